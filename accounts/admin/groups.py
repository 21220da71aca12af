"""Django's group admin, granting a group only permissions the staff user holds."""

from django.contrib import admin

# Importing Django's GroupAdmin registers it, so unregistering below always works.
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group

from accounts.admin.privileges import NoEscalationGroupAdmin
from accounts.admin.selection import ValidSelectionMixin

admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(ValidSelectionMixin, NoEscalationGroupAdmin, DjangoGroupAdmin):
    """Django's GroupAdmin; a staff user who is not a superuser grants only what they hold."""
