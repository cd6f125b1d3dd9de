"""A text search language per collection (existing collections and chunks stay ``english``).

``Chunk.search_vector`` becomes ``to_tsvector(language, text)``. PostgreSQL cannot change a generated column's
expression in place before version 17, and Django cannot alter a generated field at all, so the column (and its
GIN index) is dropped and added again: the table is rewritten once and every tsvector recomputed, with the same
values as before for English.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations, models

import knowledge.models


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="collection",
            name="language",
            field=models.CharField(default="english", max_length=32),
        ),
        migrations.AddField(
            model_name="chunk",
            name="language",
            field=knowledge.models.RegConfigField(db_default=models.Value("english")),
        ),
        migrations.RemoveIndex(model_name="chunk", name="chunk_search_vector"),
        migrations.RemoveField(model_name="chunk", name="search_vector"),
        migrations.AddField(
            model_name="chunk",
            name="search_vector",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.SearchVector("text", config=models.F("language")),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddIndex(
            model_name="chunk",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search_vector"], name="chunk_search_vector"),
        ),
    ]
