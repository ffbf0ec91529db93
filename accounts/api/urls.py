from django.urls import include, path

from accounts.api import views

# Grouped under their common prefixes, so a path of another app fails two prefixes instead of each
# route (URL resolution tries every pattern in order; docs/performance.md).
urlpatterns = [
    path(
        "v2/auth/",
        include(
            [
                path("signup", views.SignupView.as_view(), name="auth-signup"),
                path("login", views.LoginView.as_view(), name="auth-login"),
                path("refresh", views.RefreshView.as_view(), name="auth-refresh"),
                path("logout", views.LogoutView.as_view(), name="auth-logout"),
                path("logout-all", views.LogoutAllView.as_view(), name="auth-logout-all"),
                path("verify", views.VerifyView.as_view(), name="auth-verify"),
                path("password", views.PasswordChangeView.as_view(), name="auth-password"),
                path("password/reset", views.PasswordResetView.as_view(), name="auth-password-reset"),
                path(
                    "password/reset/confirm",
                    views.PasswordResetConfirmView.as_view(),
                    name="auth-password-reset-confirm",
                ),
                path("email/verify", views.EmailVerifyView.as_view(), name="auth-email-verify"),
                path("email/verify/resend", views.EmailVerifyResendView.as_view(), name="auth-email-verify-resend"),
            ]
        ),
    ),
    path(
        "v2/user/",
        include(
            [
                path("profile", views.ProfileView.as_view(), name="user-profile"),
                path("email", views.EmailChangeView.as_view(), name="user-email"),
                path("email/confirm", views.EmailChangeConfirmView.as_view(), name="user-email-confirm"),
                path("stats", views.StatsView.as_view(), name="user-stats"),
                path("sessions", views.SessionListView.as_view(), name="user-sessions"),
                path("sessions/<uuid:session_id>", views.SessionDetailView.as_view(), name="user-session"),
            ]
        ),
    ),
]
