"""Normalised event-type names shared by data models and rules.

A data model's ``event_type`` method maps a log's own event name onto one of these
values, so that one detection (for example "MFA was disabled") can cover several log
types through ``event.udm("event_type")``. The values are part of the Panther
data-model vocabulary: keep them stable.
"""

# Authentication
SUCCESSFUL_LOGIN = "successful_login"
FAILED_LOGIN = "failed_login"
SUCCESSFUL_LOGOUT = "successful_logout"

# Multi-factor authentication
MFA_ENABLED = "mfa_enabled"
MFA_DISABLED = "mfa_disabled"
MFA_RESET = "mfa_reset"
# MFA turned off for a whole organisation or account, not for one user.
ADMIN_MFA_DISABLED = "admin_mfa_disabled"

# Privileges
ADMIN_ROLE_ASSIGNED = "admin_role_assigned"

# Accounts. ACCOUNT_CREATED is an account that belongs to no single person (for example
# a billing account); USER_ACCOUNT_* are accounts of one user or service user.
ACCOUNT_CREATED = "account_created"
USER_ACCOUNT_CREATED = "user_account_created"
USER_ACCOUNT_MODIFIED = "user_account_modified"
USER_ACCOUNT_DELETED = "user_account_deleted"

# Groups and roles
USER_GROUP_CREATED = "user_group_created"
USER_GROUP_MODIFIED = "user_group_modified"
USER_GROUP_DELETED = "user_group_deleted"
USER_ROLE_CREATED = "user_role_created"
USER_ROLE_MODIFIED = "user_role_modified"
USER_ROLE_DELETED = "user_role_deleted"
