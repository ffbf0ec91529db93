"""Staff views of users and their sessions; revoking goes through the same service as the API."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.db import transaction

from accounts import services
from accounts.models import Preferences, Session, User


class PreferencesInline(admin.StackedInline):
    model = Preferences
    can_delete = False
    extra = 0


class SessionInline(admin.TabularInline):
    model = Session
    fields = ("id", "user_agent", "ip_address", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    ordering = ("-created_at",)
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).filter(revoked_at__isnull=True)


class CoinLinkUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class CoinLinkUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = CoinLinkUserChangeForm
    add_form = CoinLinkUserCreationForm
    # A password staff set (an account is compromised) ends every session through Django's change
    # hook (accounts.passwords.SessionsEndOnChange), like every other route a password takes.
    change_password_form = AdminPasswordChangeForm
    ordering = ("-created_at",)
    list_display = ("email", "first_name", "last_name", "is_active", "is_staff", "is_verified", "created_at")
    list_filter = ("is_active", "is_staff", "is_verified")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("id", "created_at", "last_login")
    inlines = (PreferencesInline, SessionInline)
    actions = ("revoke_all_sessions", "resend_verification")
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Status", {"fields": ("is_active", "is_verified", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("created_at", "last_login")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # A deactivated user's open sockets and tokens end now, not at their expiry.
            services.sessions_revoke(user_id=obj.pk, reason="deactivated")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()  # preferences are created on first use

    @admin.action(description="Sign out everywhere (revoke all sessions)")
    def revoke_all_sessions(self, request, queryset):
        count = 0
        for user in queryset:
            count += len(services.sessions_revoke(user_id=user.pk, reason="admin"))
        self.message_user(request, f"Revoked {count} session(s).", messages.SUCCESS)

    @admin.action(description="Mail a new verification link (unverified users only)")
    def resend_verification(self, request, queryset):
        users = list(queryset.filter(is_verified=False, is_active=True))
        for user in users:
            services.email_verify_request(user=user)
        self.message_user(request, f"Verification mail queued for {len(users)} user(s).", messages.SUCCESS)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "user_agent", "ip_address", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoke_reason",)
    list_select_related = ("user",)
    search_fields = ("user__email", "ip_address", "=id")
    readonly_fields = [f.name for f in Session._meta.fields]
    ordering = ("-created_at",)
    actions = ("revoke",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # ending a session is "revoke": deleting the row would skip closing its sockets

    @admin.action(description="Revoke the selected sessions")
    def revoke(self, request, queryset):
        count = 0
        with transaction.atomic():
            for user_id, ids in _by_user(queryset.filter(revoked_at__isnull=True)).items():
                count += len(services.sessions_revoke(user_id=user_id, session_ids=ids, reason="admin"))
        self.message_user(request, f"Revoked {count} session(s).", messages.SUCCESS)


def _by_user(queryset) -> dict:
    grouped: dict = {}
    for session_id, user_id in queryset.values_list("id", "user_id"):
        grouped.setdefault(user_id, []).append(session_id)
    return grouped
