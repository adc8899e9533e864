"""NetBox configuration for one netbox.sh run with extra plugins (NETBOX_EXTRA_PLUGINS).

netbox.sh points NETBOX_CONFIGURATION here: this loads the cached configuration.py (named
by PROXBOX_NB_BASE_CONFIGURATION) and appends the extra plugins to its PLUGINS, so the
shared cache is never rewritten for a plugin under test.
"""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "netbox_cached_configuration", os.environ["PROXBOX_NB_BASE_CONFIGURATION"]
)
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)

globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

PLUGINS = [
    *getattr(_base, "PLUGINS", []),
    *(name.strip() for name in os.environ.get("NETBOX_EXTRA_PLUGINS", "").split(",") if name.strip()),
]
