package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// roleBar is one bar of the teammates-by-role chart.
type roleBar struct {
	Role     string
	Access   int
	NoAccess int
}

// roleChart draws teammates per role as horizontal bars split into
// teammates with and without access. Only numbers and escaped labels go
// into the SVG.
func roleChart(bars []roleBar) template.HTML {
	const width, rowH, labelW, countW = 640, 28, 120, 90
	maxN := 1
	for _, b := range bars {
		maxN = max(maxN, b.Access+b.NoAccess)
	}
	height := rowH*len(bars) + 30
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="role-chart-title" xmlns="http://www.w3.org/2000/svg">`, width, height)
	s.WriteString(`<title id="role-chart-title">Teammates by role, with and without access</title>`)
	barW := float64(width - labelW - countW)
	for i, b := range bars {
		y := i*rowH + 4
		wa := barW * float64(b.Access) / float64(maxN)
		wn := barW * float64(b.NoAccess) / float64(maxN)
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="label">%s</text>`, labelW-8, y+16, html.EscapeString(b.Role))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="20" class="bar-access"/>`, labelW, y, wa)
		fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="%.1f" height="20" class="bar-noaccess"/>`, float64(labelW)+wa, y, wn)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" class="count">%d</text>`, float64(labelW)+wa+wn+6, y+16, b.Access+b.NoAccess)
	}
	ly := rowH*len(bars) + 14
	fmt.Fprintf(&s, `<rect x="%d" y="%d" width="12" height="12" class="bar-access"/><text x="%d" y="%d" class="legend">with access</text>`, labelW, ly, labelW+16, ly+11)
	fmt.Fprintf(&s, `<rect x="%d" y="%d" width="12" height="12" class="bar-noaccess"/><text x="%d" y="%d" class="legend">without access</text>`, labelW+130, ly, labelW+146, ly+11)
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) //nolint:gosec // numbers and escaped labels only
}

// hourChart draws changes per hour as vertical bars, one per hour, with a
// tick per day.
func hourChart(counts []int, first time.Time) template.HTML {
	const width, height, left, bottom, top = 720, 180, 40, 24, 10
	maxN := 1
	total := 0
	for _, n := range counts {
		maxN = max(maxN, n)
		total += n
	}
	plotW := float64(width - left - 8)
	plotH := float64(height - bottom - top)
	bw := plotW / float64(max(1, len(counts)))
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="hour-chart-title" xmlns="http://www.w3.org/2000/svg">`, width, height)
	fmt.Fprintf(&s, `<title id="hour-chart-title">Teammate changes per hour since %s: %d in all, at most %d in one hour</title>`,
		first.Format("2006-01-02 15:04 UTC"), total, maxN)
	fmt.Fprintf(&s, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, height-bottom, width-8, height-bottom)
	fmt.Fprintf(&s, `<text x="%d" y="%d" class="tick" text-anchor="end">%d</text>`, left-4, top+8, maxN)
	fmt.Fprintf(&s, `<text x="%d" y="%d" class="tick" text-anchor="end">0</text>`, left-4, height-bottom)
	for i, n := range counts {
		x := float64(left) + float64(i)*bw
		if t := first.Add(time.Duration(i) * time.Hour); t.Hour() == 0 {
			fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>`, x, top, x, height-bottom)
			fmt.Fprintf(&s, `<text x="%.1f" y="%d" class="tick">%s</text>`, x+2, height-6, t.Format("Jan 2"))
		}
		if n == 0 {
			continue
		}
		h := plotH * float64(n) / float64(maxN)
		fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar-access"><title>%s: %d</title></rect>`,
			x, float64(height-bottom)-h, max(bw-0.5, 0.5), h, first.Add(time.Duration(i)*time.Hour).Format("Jan 2 15:00"), n)
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) //nolint:gosec // numbers and fixed text only
}
