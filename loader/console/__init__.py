"""The web console (`logins console`, docs/console.md): each person signs in with a Postgres
role, and works through that role's own connection, so the database's grants decide what they
see. `app.create_app` builds the Starlette app; one module per page group."""
