"""Serve the Attention Workbench dashboard: `python app.py` (http://127.0.0.1:8050).

The app itself is built by `workbench.ui.create_app`; `workbench app --host --port` does the same.
"""

from workbench.ui import create_app, serve

__all__ = ["create_app", "serve"]

if __name__ == "__main__":
    serve()
