"""Admin actions that refuse a selection no row can have, instead of failing with a 500."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect


class ValidSelectionMixin:
    """A ModelAdmin whose actions check the selected ids first (a forged POST may send any).

    Django filters on the posted ids as they are: "notauuid" for a UUID key, or "abc"
    for a number, fails in the database with a 500. Here it is an error message.
    """

    def response_action(self, request, queryset):
        key = self.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                key.to_python(value)
            except ValidationError:
                self.message_user(request, "The selection is not valid.", messages.ERROR)
                return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)
