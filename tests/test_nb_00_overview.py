def test_overview_records_classes_and_demo_data(smoke_report):
    rec = smoke_report["00_overview"]
    assert rec["n_classes"] == 11
    assert rec["n_worldcover_files"] == 3
    assert rec["n_sentinel2_band_files"] == 26
