"""vmaviz entry point: ``python app.py`` serves http://127.0.0.1:8050 (debug off).

``server`` is the Flask app, for WSGI servers (e.g. ``gunicorn app:server``).
"""

from vmaviz.ui.app_factory import create_app

app = create_app()
server = app.server

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8050, debug=False)
