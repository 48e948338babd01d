"""The e-library's routes, one module per area; :func:`elibrary.web.create_app` includes them.

Each module has a ``router`` (FastAPI ``APIRouter``) and no state: the application's parts come
through the ``Lib`` dependency of :mod:`elibrary.context`.
"""
