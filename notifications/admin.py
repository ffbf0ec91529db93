"""Staff views: alerts with their firing history, notifications, settings, and system announcements."""

from __future__ import annotations

from django.contrib import admin, messages

from notifications import services
from notifications.models import Alert, AlertTrigger, Announcement, Notification, NotificationSettings


class AlertTriggerInline(admin.TabularInline):
    model = AlertTrigger
    extra = 0
    can_delete = False
    fields = ("fired_at", "price", "previous_price", "change_percent_24h")
    readonly_fields = fields
    ordering = ("-fired_at",)
    max_num = 0  # history only: staff cannot add firings by hand


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("symbol", "condition", "target_value", "quote", "user", "is_active", "repeat", "trigger_count")
    list_filter = ("is_active", "repeat", "condition", "quote")
    search_fields = ("user__email", "symbol")
    readonly_fields = ("id", "created_at", "updated_at", "last_triggered_at", "rearm_at", "trigger_count")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    inlines = [AlertTriggerInline]


@admin.register(AlertTrigger)
class AlertTriggerAdmin(admin.ModelAdmin):
    list_display = ("alert", "price", "previous_price", "fired_at")
    search_fields = ("alert__user__email", "alert__symbol")
    list_filter = ("alert__condition",)
    date_hierarchy = "fired_at"
    readonly_fields = ("alert", "price", "previous_price", "change_percent_24h", "fired_at")
    list_select_related = ("alert",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "type", "priority", "user", "is_read", "created_at")
    list_filter = ("type", "priority", "is_read")
    search_fields = ("user__email", "title", "data__symbol")
    readonly_fields = ("id", "created_at", "read_at", "emailed_at", "announcement")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    date_hierarchy = "created_at"


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "in_app_enabled", "email_enabled", "quiet_hours_start", "quiet_hours_end")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    """Saving a new announcement sends it to every active user; the "send" action sends unsent ones."""

    list_display = ("title", "priority", "created_by", "created_at", "sent_at", "completed_at", "recipients")
    list_filter = ("priority",)
    search_fields = ("title", "message")
    readonly_fields = ("created_by", "created_at", "sent_at", "completed_at", "recipients")
    actions = ["send"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.sent_at is not None:
            return ("title", "message", "priority", *self.readonly_fields)  # what went out stays as it went out
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            services.announcement_enqueue(announcement=obj)
            self.message_user(request, "The announcement is being sent to every active user.", messages.SUCCESS)

    @admin.action(description="Send the selected announcements (each is only ever sent once)")
    def send(self, request, queryset):
        unsent = list(queryset.filter(sent_at=None))
        for announcement in unsent:
            services.announcement_enqueue(announcement=announcement)
        self.message_user(request, f"{len(unsent)} announcement(s) queued; already sent ones were skipped.")
