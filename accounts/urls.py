from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from accounts.forms import ResetForm

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(
            form_class=ResetForm,
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(post_reset_login=True),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("console/organizations/new", views.organization_new, name="organization-new"),
    path("console/organizations/switch", views.organization_switch, name="organization-switch"),
    path("console/members/", views.members, name="members"),
    path("console/members/invite", views.member_invite, name="member-invite"),
    path("console/members/<int:pk>/role", views.member_role, name="member-role"),
    path("console/members/<int:pk>/remove", views.member_remove, name="member-remove"),
]
