"""The "Preview sync" button on the pages of virtual machines a Proxmox endpoint owns."""

from django.urls import reverse
from netbox.plugins import PluginTemplateExtension

from .ownership import owning_endpoint


class VirtualMachinePreviewButton(PluginTemplateExtension):
    models = ["virtualization.virtualmachine"]

    def buttons(self):
        vm = self.context["object"]
        endpoint = owning_endpoint(vm, self.context["request"].user)
        if endpoint is None:
            return ""
        return self.render(
            "proxbox_planner_netbox/vm_preview_button.html",
            extra_context={
                "preview_url": reverse("virtualization:virtualmachine_proxbox_sync_preview", kwargs={"pk": vm.pk}),
                "endpoint": endpoint,
            },
        )


template_extensions = [VirtualMachinePreviewButton]
