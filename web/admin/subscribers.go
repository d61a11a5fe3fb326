package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"herald/alerts/address"
	"herald/store"
)

// Address checks an email address an admin typed, with the one rule every
// entry point shares (address.Parse), and returns its canonical form: the
// one the store keeps. A refused address is FieldErrors{"address": why}.
func Address(raw string) (string, error) {
	a, err := address.Parse(raw)
	if err != nil {
		return "", FieldErrors{"address": address.Problem(err)}
	}
	return a, nil
}

// SubscriberInfo is what the admin sees about one address.
type SubscriberInfo struct {
	Address           string             `json:"address"`
	Status            string             `json:"status"`
	CreatedAt         time.Time          `json:"created_at"`
	ConfirmedAt       time.Time          `json:"confirmed_at,omitzero"`
	Suppressed        bool               `json:"suppressed"`
	SuppressionReason string             `json:"suppression_reason,omitempty"`
	Subscriptions     []SubscriptionInfo `json:"subscriptions"`
}

// SubscriptionInfo is one subscription of a subscriber: to a topic, a
// department or a search (its search page parameters).
type SubscriptionInfo struct {
	Topic      string    `json:"topic,omitempty"`
	Department string    `json:"department,omitempty"`
	Search     string    `json:"search,omitempty"`
	Frequency  string    `json:"frequency"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

// LookupSubscriber summarises what is stored about an address. An address
// Herald knows nothing about is store.ErrNotFound.
func (s *Service) LookupSubscriber(ctx context.Context, raw string) (SubscriberInfo, error) {
	a, err := Address(raw)
	if err != nil {
		return SubscriberInfo{}, err
	}
	data, err := s.db.SubscriberRecord(ctx, a)
	if err != nil {
		return SubscriberInfo{}, err
	}
	info := SubscriberInfo{
		Address:           data.Address,
		Status:            "no subscriber (delivery records only)",
		Suppressed:        data.Delivery.Suppressed,
		SuppressionReason: data.Delivery.SuppressionReason,
		Subscriptions:     []SubscriptionInfo{},
	}
	for _, sub := range data.Subscribers {
		switch {
		case sub.Address == data.Address && !sub.ConfirmedAt.IsZero():
			info.Status, info.CreatedAt, info.ConfirmedAt = "confirmed", sub.CreatedAt, sub.ConfirmedAt
		case sub.Address == data.Address:
			info.Status, info.CreatedAt = "not confirmed yet", sub.CreatedAt
		case info.CreatedAt.IsZero():
			info.Status, info.CreatedAt = "waiting to become the new address of "+sub.Address, sub.CreatedAt
		}
	}
	for _, sub := range data.Subscriptions {
		si := SubscriptionInfo{Frequency: sub.Frequency, Status: sub.Status, CreatedAt: sub.CreatedAt}
		si.Topic, si.Department, si.Search = targetColumns(sub)
		info.Subscriptions = append(info.Subscriptions, si)
	}
	return info, nil
}

// ExportSubscriber returns everything stored about an address as JSON,
// whole, so that a failure half-way is an error rather than a truncated
// file.
func (s *Service) ExportSubscriber(ctx context.Context, raw string) ([]byte, error) {
	a, err := Address(raw)
	if err != nil {
		return nil, err
	}
	data, err := s.db.SubscriberRecord(ctx, a)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("admin: export subscriber: %w", err)
	}
	return append(out, '\n'), nil
}

// EraseSubscriber deletes an address and everything kept about it.
func (s *Service) EraseSubscriber(ctx context.Context, raw string) error {
	a, err := Address(raw)
	if err != nil {
		return err
	}
	found, err := s.db.EraseSubscriber(ctx, a)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("admin: erase subscriber: %w", store.ErrNotFound)
	}
	return nil
}

// LiftSuppression lets Herald mail a suppressed address again; an address
// that is not suppressed is store.ErrNotFound.
func (s *Service) LiftSuppression(ctx context.Context, raw string) error {
	a, err := Address(raw)
	if err != nil {
		return err
	}
	return s.db.LiftSuppression(ctx, a)
}

// SuppressionQuery selects suppressions to list: by cause (one of
// store.Causes(), or empty for all) and by a part of the address.
type SuppressionQuery struct {
	Cause  string `json:"cause"`
	Search string `json:"q"`
	// Limit is at most 1000; 0 means 100.
	Limit int `json:"limit"`
}

// ListSuppressions lists the suppressions q selects, newest first, with
// their cause and the report that caused them. A cause that is not one,
// or a limit out of range, is FieldErrors.
func (s *Service) ListSuppressions(ctx context.Context, q SuppressionQuery) ([]store.Suppression, error) {
	fe := FieldErrors{}
	q.Cause, q.Search = strings.TrimSpace(q.Cause), strings.TrimSpace(q.Search)
	if q.Cause != "" && !slices.Contains(store.Causes(), q.Cause) {
		fe.Add("cause", "must be one of %s", strings.Join(store.Causes(), ", "))
	}
	if q.Limit < 0 || q.Limit > 1000 {
		fe.Add("limit", "%s", LimitProblem(1000))
	}
	if len(q.Search) > 254 {
		fe.Add("q", "must be at most 254 characters")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	return s.db.ListSuppressions(ctx, store.SuppressionFilter{Cause: q.Cause, Search: q.Search, Limit: q.Limit})
}

// TopicSubscriptionCounts counts active subscriptions per topic and
// frequency.
func (s *Service) TopicSubscriptionCounts(ctx context.Context) (map[string]map[string]int, error) {
	return s.db.SubscriberCounts(ctx)
}

// SubscribersPerDay counts new confirmed subscribers per day.
func (s *Service) SubscribersPerDay(ctx context.Context, days int, loc *time.Location) ([]store.DayCount, error) {
	return s.db.SubscribersPerDay(ctx, days, loc)
}

// SubscriptionInput is one confirmed subscription, to exactly one of a
// topic, a department and a search: what "subscribers add" takes, and one
// row of the CSV that import reads and export writes.
type SubscriptionInput struct {
	Address    string `json:"address"`
	Topic      string `json:"topic"`
	Department string `json:"department"`
	// Search is a search page query string (q=...&department=...) naming a
	// search Herald has stored: one someone signed up for.
	Search string `json:"search"`
	// Frequency is one of store.Frequencies(); empty means immediately.
	Frequency string `json:"frequency"`
}

// Import adds confirmed subscriptions in bulk, for people who agreed to
// them elsewhere (a list moved from another service). It reads the topics
// and departments once; each row is checked on its own (Check) and rows
// are stored in batches (Store), so a file of millions of rows costs a
// few statements per thousand.
type Import struct {
	db *store.DB
	// topics and depts map the slugs of active topics and of departments
	// to their ids, searches the parameters of stored searches.
	topics, depts, searches map[string]int64
}

// NewImport starts an import against the topics and departments that
// exist now.
func (s *Service) NewImport(ctx context.Context) (*Import, error) {
	im := &Import{db: s.db, topics: map[string]int64{}, depts: map[string]int64{}, searches: map[string]int64{}}
	ts, err := s.db.Topics(ctx, false)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		im.topics[t.Slug] = t.ID
	}
	ds, err := s.db.Departments(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		im.depts[d.Slug] = d.ID
	}
	ss, err := s.db.Searches(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range ss {
		im.searches[f.SearchQuery().Params()] = f.ID
	}
	return im, nil
}

// searchParams is the stored form of a search page query string: its
// words normalised, its type as a key, other parameters left out.
func searchParams(raw string) string {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	return store.SearchQuery{Text: store.NormalizeSearchText(v.Get("q")), Department: v.Get("department"),
		Topic: v.Get("topic"), Type: store.CategoryKey(v.Get("type"))}.Params()
}

// targetColumns puts what sub follows in the topic, department or search
// column.
func targetColumns(sub store.Subscription) (topic, department, search string) {
	switch sub.Kind {
	case "topic":
		return sub.Slug, "", ""
	case "search":
		return "", "", sub.Slug
	}
	return "", sub.Slug, ""
}

// Check cleans one subscription and finds what it is to: the row Store
// takes, or FieldErrors saying everything that is wrong with it.
func (im *Import) Check(in SubscriptionInput) (store.ImportRow, error) {
	fe := FieldErrors{}
	a, err := address.Parse(in.Address)
	if err != nil {
		fe.Add("address", "%s", address.Problem(err))
	}
	row := store.ImportRow{Address: a, Frequency: strings.TrimSpace(in.Frequency)}
	topic, dept, search := strings.TrimSpace(in.Topic), strings.TrimSpace(in.Department), strings.TrimSpace(in.Search)
	switch {
	case topic == "" && dept == "" && search == "":
		fe.Add("topic", "or department is required")
	case topic != "" && dept != "":
		fe.Add("department", "must be empty when a topic is given")
	case search != "" && (topic != "" || dept != ""):
		fe.Add("search", "must be empty when a topic or department is given")
	case search != "":
		if row.Target.SearchID = im.searches[searchParams(search)]; row.Target.SearchID == 0 {
			fe.Add("search", "names no search Herald has stored: %q", search)
		}
	case topic != "":
		if row.Target.TopicID = im.topics[topic]; row.Target.TopicID == 0 {
			fe.Add("topic", "names no active topic: %q", topic)
		}
	default:
		if row.Target.DepartmentID = im.depts[dept]; row.Target.DepartmentID == 0 {
			fe.Add("department", "names no department: %q", dept)
		}
	}
	if row.Frequency == "" {
		row.Frequency = store.FrequencyImmediately
	}
	if !store.ValidFrequency(row.Frequency) {
		fe.Add("frequency", "must be one of %s", strings.Join(store.Frequencies(), ", "))
	}
	return row, fe.err()
}

// Store stores rows that Check passed in one transaction, all of them or
// none, and returns how many subscribers it created. A batch of a
// thousand rows costs about what one row does on its own.
func (im *Import) Store(ctx context.Context, rows []store.ImportRow) (newSubscribers int, err error) {
	return im.db.ImportSubscriptions(ctx, rows)
}

// Add stores one confirmed subscription, reporting whether the subscriber
// is new.
func (im *Import) Add(ctx context.Context, in SubscriptionInput) (newSubscriber bool, err error) {
	row, err := im.Check(in)
	if err != nil {
		return false, err
	}
	return im.db.ImportSubscription(ctx, row.Address, row.Target, row.Frequency)
}

// AddSubscription stores one confirmed subscription, as an import of one
// row does, reporting whether the subscriber is new.
func (s *Service) AddSubscription(ctx context.Context, in SubscriptionInput) (newSubscriber bool, err error) {
	im, err := s.NewImport(ctx)
	if err != nil {
		return false, err
	}
	return im.Add(ctx, in)
}

// CountSubscriptions counts the active subscriptions, which is what
// EachSubscription goes through.
func (s *Service) CountSubscriptions(ctx context.Context) (int, error) {
	return s.db.CountSubscriptions(ctx)
}

// EachSubscription calls fn with every active subscription, in the form
// AddSubscription takes, so that an export imports again.
func (s *Service) EachSubscription(ctx context.Context, fn func(SubscriptionInput) error) error {
	return s.db.EachSubscription(ctx, func(address string, sub store.Subscription) error {
		row := SubscriptionInput{Address: address, Frequency: sub.Frequency}
		row.Topic, row.Department, row.Search = targetColumns(sub)
		return fn(row)
	})
}
