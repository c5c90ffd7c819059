# Group metadata and rules arrive with the groups issue; group conversations already exist as
# messaging.Conversation(kind="group").
