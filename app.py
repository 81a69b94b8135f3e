"""WSGI entry point: `flask --app app run` or `gunicorn app:app`.

After the app is built, everything it holds so far (modules, routes, compiled statements)
lives as long as the process: `gc.freeze()` moves it out of the collector's generations.
A full collection then no longer walks those ~140,000 objects (~80 ms each time, once every
few thousand SCIM requests), and workers forked by `gunicorn --preload` stop dirtying the
shared pages just by collecting (the recipe in the `gc.freeze` documentation).
"""

import gc

from portal import create_app

app = create_app()
gc.freeze()
