from acme_aws_helpers import aws_session_available, federated_role


def rule(event):
    if event.get("eventType") != "user.authentication.sso":
        return False
    return aws_session_available() and federated_role(event).startswith("AWS")
