"""The drills' auditor must itself be able to fail: its serial-order check, on hand-made answers."""

from scripts.drills.audit import fits_one_serial_order


class TestFitsOneSerialOrder:
    def test_postings_that_follow_one_another_fit(self) -> None:
        # 0 -> 30 -> -15 -> 45, reported out of order.
        assert fits_one_serial_order([(30, -15), (0, 30), (-15, 45)], 45)

    def test_postings_that_return_to_zero_fit(self) -> None:
        assert fits_one_serial_order([(0, 60), (60, 0)], 0)

    def test_no_postings_fit_a_zero_balance(self) -> None:
        assert fits_one_serial_order([], 0)

    def test_a_lost_update_does_not_fit(self) -> None:
        # Two postings both computed from a balance of 0: one overwrote the other.
        assert not fits_one_serial_order([(0, 30), (0, -20)], -20)

    def test_a_final_balance_no_posting_reached_does_not_fit(self) -> None:
        assert not fits_one_serial_order([(0, 30), (30, 60)], 30)

    def test_a_detached_cycle_does_not_fit(self) -> None:
        # 0 -> 30, and separately 100 -> 130 -> 100: balances nobody could have seen.
        assert not fits_one_serial_order([(0, 30), (100, 130), (130, 100)], 30)

    def test_a_path_not_starting_at_zero_does_not_fit(self) -> None:
        assert not fits_one_serial_order([(10, 40)], 40)
