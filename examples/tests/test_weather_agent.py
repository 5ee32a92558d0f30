"""The example suite: each test runs as [http] and [ws], replaying one committed cassette."""

from __future__ import annotations

import pytest

import weather_agent

QUESTION = "What's the weather in Paris and Oslo?"


def test_answers_with_both_cities(rws):
    result = weather_agent.ask(rws.openai_client(), rws.transport, QUESTION)
    assert result.tool_calls == ["Paris", "Oslo"]
    assert "Paris" in result.answer and "Oslo" in result.answer
    assert result.turns == 3


@pytest.mark.asyncio
async def test_answers_with_both_cities_async(rws):
    result = await weather_agent.ask_async(rws.async_openai_client(), rws.transport, QUESTION)
    assert result.tool_calls == ["Paris", "Oslo"]
    assert result.turns == 3


@pytest.mark.parametrize("city", ["Paris", "Oslo"])
def test_single_city(rws, city):
    result = weather_agent.ask(rws.openai_client(), rws.transport, f"What's the weather in {city}?")
    assert result.tool_calls == [city]
    assert city in result.answer
