"""The SCIM API benchmark: our app, a bare Flask ceiling and scim2-server, side by side."""
