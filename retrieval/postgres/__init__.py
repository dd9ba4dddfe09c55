"""The knowledge base on PostgreSQL + pgvector: schema and migrations, SQL, the facade."""
