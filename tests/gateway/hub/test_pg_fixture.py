import psycopg


def test_the_cluster_has_postgis(pg: str) -> None:
    with psycopg.connect(pg) as conn:
        conn.execute("CREATE EXTENSION postgis")
        row = conn.execute("SELECT ST_AsText(ST_MakePoint(106.9, 47.9))").fetchone()
    assert row == ("POINT(106.9 47.9)",)
