"""The application's work over the database: annotating, importing, routing, honeypots,
adjudication, reports, exports, tokenizing, training and suggestions. No Flask.
"""
