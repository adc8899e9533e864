"""Preview sync for NetBox: a "Sync preview" tab on the Proxbox plugin's Proxmox endpoints and
a "Preview sync" button on the virtual machines they own.

The plan is computed in the browser by proxbox-planner's WebAssembly core from live data:
NetBox collections read with the page's own session, Proxmox answers forwarded by this
plugin to the Proxbox backend (`proxbox-planner serve`), so the browser holds no Proxmox token.
"""

from netbox.plugins import PluginConfig

__version__ = "0.1.0"


class ProxboxPlannerConfig(PluginConfig):
    name = "proxbox_planner_netbox"
    verbose_name = "Proxbox planner"
    description = "Preview sync: see what a Proxbox sync would change before it runs"
    version = __version__
    author = "proxbox-planner"
    base_url = "proxbox-planner"
    min_version = "4.7.0"

    def ready(self):
        super().ready()
        # register_model_view() has to run before the Proxbox plugin's urls.py and NetBox's
        # virtualization urls snapshot the view registry, which happens on the first request.
        from . import views  # noqa: F401


config = ProxboxPlannerConfig
