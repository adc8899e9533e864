"""The preview pages (a tab on Proxmox endpoints, a page per virtual machine) and the three
JSON views their script calls: Proxmox answers, model names, and Apply."""

from __future__ import annotations

import json

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.http import Http404, JsonResponse
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.views import View
from netbox.views import generic
from utilities.views import ViewTab, register_model_view
from virtualization.models import VirtualMachine

from netbox_proxbox.choices import SyncTypeChoices
from netbox_proxbox.jobs import PROXBOX_SYNC_QUEUE_NAME, ProxboxSyncJob
from netbox_proxbox.models import NetBoxEndpoint, ProxmoxEndpoint
from netbox_proxbox.views.proxbox_access import permission_enqueue_proxbox_sync
from netbox_proxbox.views.sync_helpers import build_job_name

from .backend import BackendError, fetch_proxmox, validate_paths
from .csp import with_preview_csp
from .ownership import owning_endpoint

TEMPLATE = "proxbox_planner_netbox/sync_preview.html"
VIEW_ENDPOINT = "netbox_proxbox.view_proxmoxendpoint"

# The planner's stages -> the Proxbox sync type whose job runs them. VM templates are written
# by the Proxbox plugin's own template phase, part of every endpoint-wide job (it reads them
# from the backend); the planner's bootstrap (tags, custom fields, types) comes first in
# whichever stage the backend runs, so it needs a stage of its own only when alone.
SYNC_TYPE_OF_STAGE = {
    "devices": SyncTypeChoices.DEVICES,
    "storage": SyncTypeChoices.STORAGE,
    "virtual-machines": SyncTypeChoices.VIRTUAL_MACHINES,
    "vm-templates": SyncTypeChoices.VIRTUAL_MACHINES,
    "task-history": SyncTypeChoices.TASK_HISTORY,
    "vm-disks": SyncTypeChoices.VIRTUAL_MACHINES_DISKS,
    "vm-backups": SyncTypeChoices.VIRTUAL_MACHINES_BACKUPS,
    "vm-snapshots": SyncTypeChoices.VIRTUAL_MACHINES_SNAPSHOTS,
    "network-interfaces": SyncTypeChoices.NETWORK_INTERFACES,
    "vm-interfaces": SyncTypeChoices.VM_INTERFACES,
    "ip-addresses": SyncTypeChoices.IP_ADDRESSES,
    "sdn": SyncTypeChoices.SDN,
    "replications": SyncTypeChoices.REPLICATIONS,
    "backup-routines": SyncTypeChoices.BACKUP_ROUTINES,
}
BOOTSTRAP_STAGE = "bootstrap"
BOOTSTRAP_ALONE = SyncTypeChoices.DEVICES


def _apply_refusal(user) -> str | None:
    if user.has_perm(permission_enqueue_proxbox_sync()):
        return None
    return str(_("Applying needs the permission to run Proxbox syncs (add Job)."))


def _sync_user() -> dict | None:
    """The NetBox user the Proxbox backend writes as: the first enabled NetBox endpoint, in the
    order the Proxbox plugin pushes them and `serve` takes the first (its linked token, or the
    v2 token its key names). The planner tells the sync's changes from operators' by it in
    NetBox's change log; None when no endpoint names a token of this NetBox."""
    from users.models import Token

    endpoint = NetBoxEndpoint.objects.filter(enabled=True).select_related("token__user").first()
    if endpoint is None:
        return None
    token = endpoint.token
    if token is None and endpoint.token_key:
        token = Token.objects.filter(key=endpoint.token_key).select_related("user").first()
    user = getattr(token, "user", None)
    return {"id": user.pk, "username": user.username} if user else None


def _preview_config(request, endpoint: ProxmoxEndpoint, vm: VirtualMachine | None = None) -> dict:
    """What the page's script needs, as one JSON document (rendered with json_script)."""
    denied = _apply_refusal(request.user)
    return {
        "endpoint": {"id": endpoint.pk, "name": str(endpoint), "url": endpoint.get_absolute_url()},
        "vm": {"id": vm.pk, "name": str(vm), "url": vm.get_absolute_url()} if vm else None,
        "subset": {"netbox_vm_ids": [vm.pk]} if vm else None,
        "sync_user": _sync_user(),
        "planner_url": static("proxbox_planner_netbox/pkg/proxbox_planner.js"),
        "netbox_version": settings.RELEASE.version,
        # NetBox's path prefix (BASE_PATH): the planner names collections from /api/ on.
        "base_path": reverse("api-root").removesuffix("api/").rstrip("/"),
        "urls": {
            "proxmox": reverse("plugins:proxbox_planner_netbox:proxmox"),
            "models": reverse("plugins:proxbox_planner_netbox:models"),
            "apply": reverse("plugins:proxbox_planner_netbox:apply"),
            "endpoint_edit": reverse("plugins:netbox_proxbox:proxmoxendpoint_edit", kwargs={"pk": endpoint.pk}),
        },
        "csrf_token": get_token(request),
        "apply": {"allowed": denied is None, "refusal": denied},
    }


class _PreviewPageView(generic.ObjectView):
    template_name = TEMPLATE

    def get(self, request, *args, **kwargs):
        return with_preview_csp(super().get(request, *args, **kwargs))


@register_model_view(ProxmoxEndpoint, "sync_preview", path="sync-preview")
class EndpointSyncPreviewView(_PreviewPageView):
    """The plan for one Proxmox endpoint: what a sync would create, update, delete or skip."""

    queryset = ProxmoxEndpoint.objects.all()
    tab = ViewTab(label=_("Sync preview"), permission=VIEW_ENDPOINT, weight=950)

    def get_extra_context(self, request, instance):
        return {"preview_config": _preview_config(request, instance)}


@register_model_view(VirtualMachine, "proxbox_sync_preview", path="sync-preview")
class VirtualMachineSyncPreviewView(_PreviewPageView):
    """The plan for one virtual machine of an endpoint (the planner's subset option)."""

    queryset = VirtualMachine.objects.all()

    def get_extra_context(self, request, instance):
        endpoint = owning_endpoint(instance, request.user)
        if endpoint is None:
            raise Http404("no Proxmox endpoint you may view owns this virtual machine")
        return {"preview_config": _preview_config(request, endpoint, instance)}


# --------------------------------------------------------------------------- JSON views


class _JsonView(View):
    """POST/GET JSON for the page's script: session login, CSRF (Django's middleware), and
    errors as `{"error": {"status", "message"}}`."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _error(403, "log in to NetBox first")
        try:
            return super().dispatch(request, *args, **kwargs)
        except BackendError as exc:
            return _error(exc.status, str(exc))

    @staticmethod
    def body(request) -> dict:
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            raise BackendError("the request body is not JSON", 400) from exc
        if not isinstance(body, dict):
            raise BackendError("the request body is not a JSON object", 400)
        return body

    @staticmethod
    def visible_endpoint(request, endpoint_id) -> ProxmoxEndpoint:
        endpoint = (
            ProxmoxEndpoint.objects.restrict(request.user, "view").filter(pk=_positive_int(endpoint_id)).first()
        )
        if endpoint is None:
            raise BackendError("no Proxmox endpoint with that id that you may view", 404)
        return endpoint


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"status": status, "message": message}}, status=status)


def _positive_int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BackendError("ids are positive integers", 400)
    return value


class ProxmoxAnswersView(_JsonView):
    """POST {"endpoint_id", "paths"} → {path: data | {"error": …}} from the Proxbox backend."""

    http_method_names = ["post"]

    def post(self, request):
        body = self.body(request)
        endpoint = self.visible_endpoint(request, body.get("endpoint_id"))
        paths = validate_paths(body.get("paths"))
        answers = fetch_proxmox(endpoint, paths)
        # Only what was asked for reaches the page, whatever else a backend might add.
        return JsonResponse({path: answers[path] for path in paths if path in answers})


class ModelNamesView(_JsonView):
    """GET ?label=app.model… → NetBox's names for those models and their fields."""

    http_method_names = ["get"]

    def get(self, request):
        out = {}
        for label in request.GET.getlist("label")[:200]:
            try:
                model = apps.get_model(label)
            except (LookupError, ValueError):
                continue
            out[label] = {
                "name": _label(model._meta.verbose_name),
                "plural": _label(model._meta.verbose_name_plural),
                "fields": _field_labels(model),
            }
        return JsonResponse(out)


def _label(verbose) -> str:
    """A verbose name as NetBox shows it: capitalised, except a word written its own way
    ("vCPUs", "iSCSI")."""
    text = str(verbose)
    return text if len(text) > 1 and text[1].isupper() else capfirst(text)


def _field_labels(model) -> dict[str, str]:
    labels = {}
    for field in model._meta.get_fields():
        if getattr(field, "auto_created", False) and not getattr(field, "concrete", False):
            continue
        verbose = getattr(field, "verbose_name", None)
        if verbose:
            labels[field.name] = _label(verbose)
    # A generic foreign key's id column reads as the object it names.
    for name in ("assigned_object_id",):
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        labels[name] = _label(_("assigned object"))
    return labels


class ApplyView(_JsonView):
    """POST {"endpoint_id", "stages", "netbox_vm_ids"?} → the Proxbox sync job, enqueued
    exactly as the plugin's own buttons do (same job, queue, permission and log)."""

    http_method_names = ["post"]

    def post(self, request):
        refusal = _apply_refusal(request.user)
        if refusal:
            return _error(403, refusal)
        body = self.body(request)
        endpoint = self.visible_endpoint(request, body.get("endpoint_id"))
        sync_types = _sync_types(body.get("stages"))
        vm_ids = [str(vm.pk) for vm in _visible_vms(request, body.get("netbox_vm_ids"))]
        job = ProxboxSyncJob.enqueue(
            instance=None,
            user=request.user,
            queue_name=PROXBOX_SYNC_QUEUE_NAME,
            name=build_job_name(str(_("Preview sync"))),
            sync_types=sync_types,
            proxmox_endpoint_ids=[endpoint.pk],
            **({"netbox_vm_ids": vm_ids} if vm_ids else {}),
        )
        return JsonResponse(
            {
                "job": {
                    "id": job.pk,
                    "url": job.get_absolute_url(),
                    "api_url": reverse("core-api:job-detail", kwargs={"pk": job.pk}),
                    "sync_types": sync_types,
                }
            },
            status=201,
        )


def _sync_types(stages) -> list[str]:
    if not isinstance(stages, list) or not stages or not all(isinstance(s, str) for s in stages):
        raise BackendError("stages: a list of the plan's stage names", 400)
    unknown = [s for s in stages if s not in SYNC_TYPE_OF_STAGE and s != BOOTSTRAP_STAGE]
    if unknown:
        raise BackendError(f"stages the Proxbox sync job cannot run: {', '.join(unknown)}", 400)
    sync_types = list(dict.fromkeys(SYNC_TYPE_OF_STAGE[s] for s in stages if s in SYNC_TYPE_OF_STAGE))
    return sync_types or [BOOTSTRAP_ALONE]


def _visible_vms(request, ids) -> list[VirtualMachine]:
    if ids is None:
        return []
    if not isinstance(ids, list):
        raise BackendError("netbox_vm_ids: a list of virtual machine ids", 400)
    wanted = {_positive_int(i) for i in ids}
    vms = list(VirtualMachine.objects.restrict(request.user, "view").filter(pk__in=wanted))
    if len(vms) != len(wanted):
        raise BackendError("netbox_vm_ids: a virtual machine you may not view", 404)
    return vms
