from django.urls import path

from realtime import views

urlpatterns = [
    path("", views.live, name="live"),
]
