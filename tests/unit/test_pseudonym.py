import pytest

from shared.pseudonym import InvalidBsnError, is_pseudonym, pseudonymise, validate_bsn

SECRET = b"s" * 32


def test_a_valid_bsn_passes_the_eleven_test():
    assert validate_bsn("999990019") == "999990019"
    assert validate_bsn(" 111222333 ") == "111222333"


FULLWIDTH_DIGITS = "\uff11" * 3 + "\uff12" * 3 + "\uff13" * 3


@pytest.mark.parametrize(
    "bsn", ["999990018", "12345678", "1234567890", "abcdefghi", "000000000", "", FULLWIDTH_DIGITS]
)
def test_an_invalid_bsn_is_refused_without_repeating_it(bsn):
    with pytest.raises(InvalidBsnError) as error:
        validate_bsn(bsn)
    assert bsn.strip() == "" or bsn not in str(error.value)


def test_the_pseudonym_is_stable_and_depends_on_the_secret():
    first = pseudonymise("999990019", SECRET)
    assert first == pseudonymise("999990019", SECRET)
    assert first != pseudonymise("999990019", b"t" * 32)
    assert first != pseudonymise("111222333", SECRET)
    assert is_pseudonym(first)
    assert "999990019" not in first
