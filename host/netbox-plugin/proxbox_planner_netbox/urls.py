from django.urls import path

from . import views

urlpatterns = [
    path("proxmox/", views.ProxmoxAnswersView.as_view(), name="proxmox"),
    path("models/", views.ModelNamesView.as_view(), name="models"),
    path("apply/", views.ApplyView.as_view(), name="apply"),
]
