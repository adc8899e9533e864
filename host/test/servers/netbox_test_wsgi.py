"""NetBox's WSGI application for the test servers (netbox.sh runs it under gunicorn).

The same application production runs, with Django serving /static/ as `runserver --insecure`
does: in production nginx serves those files, and the tests' browser needs the pages whole.
"""
from django.contrib.staticfiles.handlers import StaticFilesHandler
from netbox.wsgi import application as netbox_application

application = StaticFilesHandler(netbox_application)
