"""The database: its tables (models), engines and migrations, the SQLite write lock and
checkpoints, who has the file open, backup and restore, the job queue.
"""
