"""A text search language per collection: stemming and stop words of the collection's language, in the index and
in the query; existing collections stay English; a new language re-indexes the full text without embedding."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import Organization
from aivax.errors import InvalidRequest
from knowledge import services
from knowledge.models import Chunk, Collection
from knowledge.search import search_collection
from tests.knowledge.conftest import index_queued

pytestmark = pytest.mark.django_db

PASSAGES = {
    "paris": "Paris é a capital da França e uma das maiores cidades da Europa.",
    "lisboa": "Lisboa é a capital de Portugal; o posto de informação turística fica no Rossio.",
    "madrid": "Madrid é a capital da Espanha; o museu do Prado fica na cidade.",
    "bolo": "Receita de bolo de cenoura com cobertura de chocolate.",
}


def _fill(collection: Collection) -> None:
    for name, text in PASSAGES.items():
        services.document_upsert(collection=collection, name=name, contents=text)
    assert set(index_queued(collection)) == {"indexed"}


def _lexemes(collection: Collection, name: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (unnest(c.search_vector)).lexeme FROM knowledge_chunk c JOIN knowledge_document d "
            "ON d.id = c.document_id WHERE d.collection_id = %s AND d.name = %s",
            [collection.pk, name],
        )
        return {row[0] for row in cursor.fetchall()}


def _names(collection: Collection, term: str, mode: str) -> list[str]:
    result = search_collection(
        organization_id=collection.organization_id, collection_id=collection.pk, term=term, mode=mode, top=4
    )
    return [hit.document_name for hit in result.hits]


def test_a_portuguese_collection_stems_and_drops_stop_words_in_portuguese(funded_org: Organization) -> None:
    collection = services.collection_create(organization=funded_org, name="Geografia", language="pt-BR")
    assert collection.language == "portuguese"
    _fill(collection)
    lexemes = _lexemes(collection, "paris")
    # Portuguese stop words are gone, plurals are stemmed like their singular.
    assert not {"da", "e", "uma", "das"} & lexemes
    assert _lexemes(collection, "madrid") & lexemes >= {"capital"}

    # "Qual a capital da França?": every word but "capital" and "França" is a stop word in Portuguese.
    assert _names(collection, "Qual a capital da França?", "fulltext")[0] == "paris"
    assert _names(collection, "Qual a capital da França?", "hybrid")[0] == "paris"
    # A plural finds the singular ("informações" / "informação").
    assert _names(collection, "informações", "fulltext") == ["lisboa"]
    assert Chunk.objects.for_org(funded_org).filter(collection=collection).count() == len(PASSAGES)


def test_english_is_the_default_and_misses_portuguese_stems(funded_org: Organization, collection: Collection) -> None:
    assert collection.language == "english"
    _fill(collection)
    assert "da" in _lexemes(collection, "paris")  # not an English stop word
    assert _names(collection, "informações", "fulltext") == []  # English stems it to another word


def test_changing_the_language_reindexes_the_full_text_only(
    funded_org: Organization, collection: Collection, django_capture_on_commit_callbacks
) -> None:
    _fill(collection)
    before = {c.pk: list(c.embedding) for c in Chunk.objects.for_org(funded_org).filter(collection=collection)}
    with django_capture_on_commit_callbacks(execute=True):
        updated, reindexing = services.collection_update(collection=collection, language="portuguese")
    assert updated.language == "portuguese" and reindexing is False  # nothing to embed again
    assert not {"da", "e"} & _lexemes(collection, "paris")
    assert _names(collection, "informações", "fulltext") == ["lisboa"]
    after = {c.pk: list(c.embedding) for c in Chunk.objects.for_org(funded_org).filter(collection=collection)}
    assert after == before  # same chunks, same vectors


def test_simple_has_no_stemming_and_unknown_languages_are_refused(funded_org: Organization) -> None:
    collection = services.collection_create(organization=funded_org, name="Raw", language="simple")
    _fill(collection)
    assert {"da", "cidades"} <= _lexemes(collection, "paris")
    with pytest.raises(InvalidRequest) as error:
        services.collection_create(organization=funded_org, name="Bad", language="klingon")
    assert error.value.param == "language"
    assert services.text_search_language("ES") == "spanish" and services.text_search_language("pt_PT") == "portuguese"
