package pull

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"herald/store"
	"herald/templates/text"
)

// govukBase is where the GOV.UK search API's relative links point when
// the API's own address is unknown.
const govukBase = "https://www.gov.uk"

// govukSite returns the site the search API's relative links belong to: the
// origin of the API URL itself (https://www.gov.uk for GOV.UK), so a mirror
// or a local copy of the API links to its own pages.
func govukSite(feedURL string) string {
	u, err := url.Parse(feedURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return govukBase
	}
	return u.Scheme + "://" + u.Host
}

// govukSearch is the part of a GOV.UK search API response Herald reads
// (https://www.gov.uk/api/search.json?filter_organisations=...).
type govukSearch struct {
	Results *[]govukResult `json:"results"`
}

type govukResult struct {
	Title           string `json:"title"`
	Link            string `json:"link"`
	Description     string `json:"description"`
	PublicTimestamp string `json:"public_timestamp"`
	Organisations   []struct {
		Slug  string `json:"slug"`
		Title string `json:"title"`
	} `json:"organisations"`
	DocumentType string `json:"content_store_document_type"`
}

// ingestGovUKSearch reads a GOV.UK search API response. Results have no id,
// so their link (stable on GOV.UK) keys them. The document type is kept as
// Entry.DocumentType (press_release) and becomes a category under its
// label (Press release), the form other sources give, so topic rules and
// readers see one vocabulary; the organisations become categories under
// their titles, or their slugs when the response has no title.
func ingestGovUKSearch(body []byte, feedURL string) (*ParsedFeed, error) {
	var s govukSearch
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, ingestFailed("GOV.UK search response", err)
	}
	if s.Results == nil {
		return nil, errors.New("not a feed: the GOV.UK search response has no results list")
	}
	site := govukSite(feedURL)
	base, _ := url.Parse(site)
	pf := &ParsedFeed{Format: store.FormatGovUKSearch, Title: "GOV.UK search", Link: site}
	pf.Items = make([]RawItem, 0, len(*s.Results))
	for _, r := range *s.Results {
		link := strings.TrimSpace(r.Link)
		if u, err := base.Parse(link); err == nil && link != "" {
			link = u.String()
		}
		var cats []string
		if label := text.DocumentTypeLabel(r.DocumentType); label != "" {
			cats = append(cats, label)
		}
		for _, o := range r.Organisations {
			if t := strings.TrimSpace(o.Title); t != "" {
				cats = append(cats, t)
			} else if o.Slug != "" {
				cats = append(cats, o.Slug)
			}
		}
		pub := ingestTimeLoose(r.PublicTimestamp)
		pf.Items = append(pf.Items, RawItem{
			Link:        link,
			Title:       r.Title,
			Summary:     r.Description,
			SummaryText: true,
			Published:   pub,
			// public_timestamp moves only for a major change: the
			// publisher's own "this is worth telling people again".
			MajorVersionAt: pub,
			Categories:     cats,
			DocumentType:   r.DocumentType,
			BaseURL:        site,
		})
	}
	return pf, nil
}
