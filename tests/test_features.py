"""Per-column fitting: overflow/underflow-safe standardisation at any magnitude, old specs still encode."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.data.features import encode_feature, safe_stats, standardise
from trainlab.errors import UserError


@settings(max_examples=60, deadline=None)
@given(st.integers(-307, 307), st.lists(st.floats(-1.0, 1.0), min_size=2, max_size=40))
def test_standardisation_is_finite_at_every_magnitude(exponent, units):
    values = np.array(units) * 10.0 ** exponent
    if values.min() == values.max():
        return
    mean, std, median = safe_stats("c", values)
    z = standardise(values, mean, std)
    assert np.isfinite([mean, std, median]).all() and std > 0 and np.isfinite(z).all()
    assert abs(z.mean()) < 1e-6 and z.std() == pytest.approx(1.0, rel=1e-6)


def test_ordinary_magnitudes_are_plain_float64_and_subnormals_are_named():
    values = np.array([1.0, 2.0, 4.0, 8.0])
    assert safe_stats("c", values) == (values.mean(), values.std(), np.median(values))  # bit for bit as before
    with pytest.raises(UserError, match=r"column 'c': its values .* too close together to standardise"):
        safe_stats("c", np.array([0.0, 5e-324]))  # the two smallest floats: the std underflows to 0


def test_a_spec_from_before_schemas_still_encodes():
    old = {"name": "a", "kind": "numeric", "mean": 2.0, "std": 2.0, "median": 1.0}  # no "missing" key
    out = encode_feature(old, ["4", "", "NA"], lambda i: f"row {i}")
    assert out[:, 0].tolist() == [1.0, -0.5, -0.5]
