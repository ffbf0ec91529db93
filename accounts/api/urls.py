from django.urls import path

from accounts.api import views

urlpatterns = [
    path("v2/auth/signup", views.SignupView.as_view(), name="auth-signup"),
    path("v2/auth/login", views.LoginView.as_view(), name="auth-login"),
    path("v2/auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("v2/auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("v2/auth/logout-all", views.LogoutAllView.as_view(), name="auth-logout-all"),
    path("v2/auth/verify", views.VerifyView.as_view(), name="auth-verify"),
    path("v2/auth/password", views.PasswordChangeView.as_view(), name="auth-password"),
    path("v2/auth/password/reset", views.PasswordResetView.as_view(), name="auth-password-reset"),
    path(
        "v2/auth/password/reset/confirm", views.PasswordResetConfirmView.as_view(), name="auth-password-reset-confirm"
    ),
    path("v2/auth/email/verify", views.EmailVerifyView.as_view(), name="auth-email-verify"),
    path("v2/auth/email/verify/resend", views.EmailVerifyResendView.as_view(), name="auth-email-verify-resend"),
    path("v2/user/profile", views.ProfileView.as_view(), name="user-profile"),
    path("v2/user/email", views.EmailChangeView.as_view(), name="user-email"),
    path("v2/user/email/confirm", views.EmailChangeConfirmView.as_view(), name="user-email-confirm"),
    path("v2/user/stats", views.StatsView.as_view(), name="user-stats"),
    path("v2/user/sessions", views.SessionListView.as_view(), name="user-sessions"),
    path("v2/user/sessions/<uuid:session_id>", views.SessionDetailView.as_view(), name="user-session"),
]
