"""A matcher whose cheapest word groups tie starts with one another matcher already lists
first (module.first_candidates is shared per file), and the order changes no match."""
from adopter import match
from adopter.engine import matchers_for
from adopter.ruleset import load_rules

LOG_SOFTMAX = ("op", "torch.nn.functional.log_softmax")
NLL = ("op", "torch.nn.functional.nll_loss")
TRANSPOSE = ("op", "torch.transpose")


def test_tied_operation_key_already_listed_first_goes_first(monkeypatch):
    monkeypatch.setattr(match, "_FIRST_GROUPS", {("model", TRANSPOSE)})
    order = (LOG_SOFTMAX, NLL, TRANSPOSE, ("layer", frozenset({"adopter.lm_head"}), ()))
    assert match._shared_first("model", order) == (TRANSPOSE, LOG_SOFTMAX, NLL, order[3])


def test_no_listed_group_keeps_the_order_and_registers_the_first(monkeypatch):
    monkeypatch.setattr(match, "_FIRST_GROUPS", set())
    order = (LOG_SOFTMAX, NLL, TRANSPOSE)
    assert match._shared_first("model", order) == order
    assert ("model", LOG_SOFTMAX) in match._FIRST_GROUPS


def test_listed_group_of_another_scope_or_a_cheaper_kind_first_is_left(monkeypatch):
    monkeypatch.setattr(match, "_FIRST_GROUPS", {("file", TRANSPOSE), ("model", NLL)})
    assert match._shared_first("model", (LOG_SOFTMAX, TRANSPOSE)) == (LOG_SOFTMAX, TRANSPOSE)
    # a plain word is cheaper than any operation's spellings: it stays first
    words = ("words", ("view", "reshape"))
    assert match._shared_first("model", (words, LOG_SOFTMAX, NLL)) == (words, LOG_SOFTMAX, NLL)


def test_order_keeps_the_key_set():
    for rule in load_rules():
        for m in matchers_for(rule):
            assert sorted(map(repr, m.word_order)) == sorted(map(repr, m.word_keys))
