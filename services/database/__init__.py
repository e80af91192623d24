"""The database schema's history: one PostgreSQL database, one Alembic history, for the
tables of the monitor (services/sla_monitor/schema.py) and of the notifier
(services/notifier/schema.py). Here rather than in either service because both own tables
in it; ``slawatch db`` (cli.py) drives it, migrate.py runs Alembic from code.
"""
