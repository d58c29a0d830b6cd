"""The rules, pure functions of their input: spans and offsets, agreement statistics, import
formats, exporters, tokenizers, suggestions, errors. Nothing here imports Flask or the database.
"""
