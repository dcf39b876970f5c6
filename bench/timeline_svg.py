"""Draw a throughput timeline as an SVG chart (no plotting library needed).

    python3 bench/timeline_svg.py DATA.csv OUT.svg SHADE_FROM SHADE_TO TITLE [XLABEL] [YLABEL]

DATA.csv lines are `series,x,y`; one line per series is drawn over x, and
the span SHADE_FROM..SHADE_TO (e.g. the slow-disk load) is shaded unless
SHADE_FROM > SHADE_TO.
"""

import sys
from collections import defaultdict
from xml.sax.saxutils import escape

COLOURS = {"aerie": "#1f77b4", "swift": "#d62728"}


def main():
    data_path, out_path, shade_from, shade_to, title = sys.argv[1:6]
    xlabel = sys.argv[6] if len(sys.argv) > 6 else "second"
    ylabel = sys.argv[7] if len(sys.argv) > 7 else "fast-device ops/s"
    shade_from, shade_to = float(shade_from), float(shade_to)
    series = defaultdict(list)
    with open(data_path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) != 3 or not parts[2]:
                continue
            series[parts[0]].append((float(parts[1]), float(parts[2])))
    width, height = 760, 380
    left, right, top, bottom = 70, 150, 40, 50
    xs = [x for pts in series.values() for x, _ in pts] or [0, 1]
    ymax = max([y for pts in series.values() for _, y in pts] or [1]) * 1.1 or 1
    x0, x1 = min(xs) - 0.5, max(xs) + 0.5
    px = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)
    py = lambda y: top + (1 - y / ymax) * (height - top - bottom)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    if shade_from <= shade_to:
        out += [
            f'<rect x="{px(shade_from - 0.5):.1f}" y="{top}" width="{px(shade_to + 0.5) - px(shade_from - 0.5):.1f}" '
            f'height="{height - top - bottom}" fill="#f2c9c9" opacity="0.6"/>',
            f'<text x="{(px(shade_from - 0.5) + px(shade_to + 0.5)) / 2:.1f}" y="{top + 14}" text-anchor="middle" '
            f'fill="#7a2e2e">slow-disk load</text>',
        ]
    # Axes and grid.
    for i in range(6):
        y = ymax / 1.1 * i / 5
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
    for x in sorted(set(xs)):
        out.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(
        f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + height - bottom) / 2})">{escape(ylabel)}</text>'
    )
    out.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" stroke="black"/>'
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="black"/>'
    )
    for i, (name, pts) in enumerate(sorted(series.items())):
        pts.sort()
        colour = COLOURS.get(name, "#555")
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly = top + 20 + i * 22
        out.append(f'<line x1="{width - right + 15}" x2="{width - right + 45}" y1="{ly}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2.5"/>')
        out.append(f'<text x="{width - right + 52}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
