def rule(event):
    # A row of the scheduled query, not an Okta event: udm() reads the row's
    # own column because scheduled rules get no data model.
    return event.udm("actor_user") == "row-user@acme.example" and event.get("grants", 0) > 10


def title(event):
    return f"{event.get('actor_user')} granted {event.get('grants')} admin roles in a day"
