package templates_test

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"flag"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"herald/templates"
)

var iconsUpdate = flag.Bool("update-icons", false, "redraw the PNG and ICO icons in static/ from the mark")

// The mark, on a 64-unit square: a rounded blue square, a white H and an
// amber bar under it. static/icon.svg draws the same shapes; the raster
// icons are drawn here from them, so the two cannot drift apart.
const iconUnits = 64

var (
	iconBlue  = color.NRGBA{0x1d, 0x4f, 0x91, 0xff}
	iconWhite = color.NRGBA{0xff, 0xff, 0xff, 0xff}
	iconAmber = color.NRGBA{0xf2, 0xb7, 0x05, 0xff}
)

type iconRect struct {
	x0, y0, x1, y1 float64
	c              color.NRGBA
}

var iconShapes = []iconRect{
	{16, 12, 24, 48, iconWhite},
	{40, 12, 48, 48, iconWhite},
	{24, 26, 40, 34, iconWhite},
	{16, 52, 48, 56, iconAmber},
}

// iconAt is the mark's colour at unit coordinates (u, v), transparent
// outside the rounded square (radius 12).
func iconAt(u, v float64) color.NRGBA {
	const r = 12.0
	cu, cv := min(max(u, r), iconUnits-r), min(max(v, r), iconUnits-r)
	if u < 0 || v < 0 || u >= iconUnits || v >= iconUnits || (u-cu)*(u-cu)+(v-cv)*(v-cv) > r*r {
		return color.NRGBA{}
	}
	for _, s := range iconShapes {
		if u >= s.x0 && u < s.x1 && v >= s.y0 && v < s.y1 {
			return s.c
		}
	}
	return iconBlue
}

// iconDraw draws the mark size pixels square at (left, top) of a w×h
// canvas, averaging 4×4 samples a pixel for smooth edges.
func iconDraw(w, h, left, top, size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	scale := float64(iconUnits) / float64(size)
	const n = 4
	for y := range size {
		for x := range size {
			var r, g, b, a float64
			for i := range n {
				for j := range n {
					c := iconAt((float64(x)+(float64(i)+0.5)/n)*scale, (float64(y)+(float64(j)+0.5)/n)*scale)
					fa := float64(c.A) / 255
					r, g, b, a = r+float64(c.R)*fa, g+float64(c.G)*fa, b+float64(c.B)*fa, a+fa
				}
			}
			if a == 0 {
				continue
			}
			img.SetNRGBA(left+x, top+y, color.NRGBA{uint8(r/a + 0.5), uint8(g/a + 0.5), uint8(b/a + 0.5), uint8(a/(n*n)*255 + 0.5)})
		}
	}
	return img
}

func iconPNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// iconICO wraps a PNG in an ICO container (one image, PNG-compressed, as
// every browser since 2007 reads).
func iconICO(pngData []byte, size int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint16(nil, 0)) // reserved
	b.Write(le.AppendUint16(nil, 1)) // type: icon
	b.Write(le.AppendUint16(nil, 1)) // images
	b.WriteByte(byte(size))
	b.WriteByte(byte(size))
	b.WriteByte(0)                    // palette
	b.WriteByte(0)                    // reserved
	b.Write(le.AppendUint16(nil, 1))  // planes
	b.Write(le.AppendUint16(nil, 32)) // bits per pixel
	b.Write(le.AppendUint32(nil, uint32(len(pngData))))
	b.Write(le.AppendUint32(nil, 6+16)) // offset of the image
	b.Write(pngData)
	return b.Bytes()
}

// TestIcons checks that the shipped raster icons are the mark as drawn
// now (go test ./templates -update-icons redraws them), and that the SVG
// is well-formed.
func TestIcons(t *testing.T) {
	want := map[string][]byte{
		"icon-64.png":  iconPNG(t, iconDraw(64, 64, 0, 0, 64)),
		"icon-512.png": iconPNG(t, iconDraw(512, 512, 0, 0, 512)),
		"logo.png":     iconPNG(t, iconDraw(512, 256, 128, 0, 256)),
		"favicon.ico":  iconICO(iconPNG(t, iconDraw(32, 32, 0, 0, 32)), 32),
	}
	for name, b := range want {
		path := filepath.Join("static", name)
		if *iconsUpdate {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := fs.ReadFile(templates.Embedded(), "static/"+name)
		if err != nil {
			t.Fatalf("%v (go test ./templates -update-icons draws it)", err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("static/%s is not the mark as drawn now (go test ./templates -update-icons)", name)
		}
		if filepath.Ext(name) == ".png" {
			img, err := png.Decode(bytes.NewReader(got))
			if err != nil {
				t.Errorf("static/%s: %v", name, err)
			} else if c := color.NRGBAModel.Convert(img.At(img.Bounds().Dx()/2, img.Bounds().Dy()/8)).(color.NRGBA); c != iconBlue {
				t.Errorf("static/%s: the top of the mark is %v, want the blue %v", name, c, iconBlue)
			}
		}
	}
	svg, err := fs.ReadFile(templates.Embedded(), "static/icon.svg")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name `xml:"http://www.w3.org/2000/svg svg"`
		ViewBox string   `xml:"viewBox,attr"`
		Rects   []struct {
			X      float64 `xml:"x,attr"`
			Y      float64 `xml:"y,attr"`
			Width  float64 `xml:"width,attr"`
			Height float64 `xml:"height,attr"`
			Fill   string  `xml:"fill,attr"`
		} `xml:"rect"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil {
		t.Fatalf("static/icon.svg: %v", err)
	}
	if doc.ViewBox != "0 0 64 64" || len(doc.Rects) != 1+len(iconShapes) {
		t.Fatalf("static/icon.svg: viewBox %q, %d rects", doc.ViewBox, len(doc.Rects))
	}
	for i, s := range iconShapes {
		r := doc.Rects[i+1]
		if r.X != s.x0 || r.Y != s.y0 || r.Width != s.x1-s.x0 || r.Height != s.y1-s.y0 {
			t.Errorf("static/icon.svg: rect %d is %+v, the mark has %+v", i+1, r, s)
		}
	}
}
