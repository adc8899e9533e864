"""Which Proxmox endpoint's preview covers a NetBox virtual machine (for its "Preview sync"
button and page).

A synced VM carries the Proxbox plugin's sync-state record (written by Proxbox, and by the
planner wherever the plugin is installed), which names its endpoint; without one, the
planner's own custom field `proxmox_endpoint` does. Either names the endpoint to preview;
what the sync may then touch for that VM is the planner's decision (its subset option),
not this module's.
"""

from __future__ import annotations

from netbox_proxbox.models import ProxmoxEndpoint


def _marked_endpoint_id(vm) -> int | None:
    value = (getattr(vm, "custom_field_data", None) or {}).get("proxmox_endpoint")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _sync_state_endpoint_id(vm) -> int | None:
    from netbox_proxbox.vm_identity import resolve_vm_endpoint_context

    resolved = resolve_vm_endpoint_context(vm)
    return resolved[0] if resolved else None


def owning_endpoint(vm, user) -> ProxmoxEndpoint | None:
    """The endpoint owning `vm`, when `user` may view it; else None."""
    endpoint_id = _sync_state_endpoint_id(vm) or _marked_endpoint_id(vm)
    if endpoint_id is None:
        return None
    return ProxmoxEndpoint.objects.restrict(user, "view").filter(pk=endpoint_id).first()
