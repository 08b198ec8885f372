import boto3


def aws_session_available():
    # Only checks that the SDK is importable; no call leaves the machine.
    return hasattr(boto3, "session")


def federated_role(event):
    target = event.get("target") or [{}]
    return (target[0] or {}).get("displayName", "")
