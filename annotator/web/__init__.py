"""The browser's face: the app, its pages and JSON API, log-in, security headers, the request's
database session and access rule, errors as responses, and the server that runs it.
"""
