"""review: a local web app where clinicians accept, fix or reject pseudo labels and correct report fields.

``endoked review RUN`` serves it (:func:`endoked.review.server.serve`); the decisions go to the run folder's
SQLite store (:mod:`endoked.reviewed`), which the next ``endoked run`` and ``endoked export`` read. The web
framework (``pip install endoked[review]``) is imported only when the app is built.
"""
