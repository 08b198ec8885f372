from acme_base_helpers import actor_login


def get_actor_user(event):
    return actor_login(event)
