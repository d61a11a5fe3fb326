package web

import (
	"net/http"
	"strconv"
	"strings"
)

// obj is a JSON object of the OpenAPI document.
type obj = map[string]any

func ref(name string) obj   { return obj{"$ref": "#/components/schemas/" + name} }
func arrayOf(items any) obj { return obj{"type": "array", "items": items} }
func str(desc string) obj   { return obj{"type": "string", "description": desc} }
func strFormat(f, desc string) obj {
	return obj{"type": "string", "format": f, "description": desc}
}
func integer(desc string) obj { return obj{"type": "integer", "description": desc} }
func boolean(desc string) obj { return obj{"type": "boolean", "description": desc} }
func object(required []string, props obj) obj {
	o := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// apiOperation describes one route of the admin API.
type apiOperation struct {
	method, path, summary, description string
	params                             []obj
	body                               any // schema of the JSON body, or nil
	status                             int
	response                           any // schema of the JSON answer, or nil for no body
	errors                             []int
	// needs names the dependency without which the route is not served:
	// "puller", "subscribers", "outbox" or "emails".
	needs string
}

func pathParam(name, desc string) obj {
	return obj{"name": name, "in": "path", "required": true, "description": desc, "schema": obj{"type": "string"}}
}

func queryParam(name, desc string, required bool, schema obj) obj {
	return obj{"name": name, "in": "query", "required": required, "description": desc, "schema": schema}
}

// apiOperations is the admin API, route by route. A test checks that every
// registered /api/v1 route is here and every operation here is registered;
// the document leaves out the routes whose dependency is missing.
func apiOperations() []apiOperation {
	slug := pathParam("slug", "The topic's slug.")
	dslug := pathParam("slug", "The department's slug.")
	name := pathParam("name", "The source's name.")
	searchID := pathParam("id", "The search's id.")
	address := queryParam("address", "The subscriber's email address.", true, obj{"type": "string", "format": "email"})
	emailKind := pathParam("kind", "The kind of email: confirm, welcome, immediate, daily-digest, weekly-digest, manage or address-change.")
	return []apiOperation{
		{method: "GET", path: "/api/v1/topics", summary: "List topics",
			description: "Active topics by title, each with its confirmed subscriptions per frequency.",
			params:      []obj{queryParam("retired", "true to include retired topics.", false, obj{"type": "boolean"})},
			status:      200, response: arrayOf(ref("Topic"))},
		{method: "POST", path: "/api/v1/topics", summary: "Create a topic",
			description: "Creating a topic tags the whole archive with it at once.",
			body:        ref("TopicInput"), status: 201, response: ref("Topic"), errors: []int{400}},
		{method: "POST", path: "/api/v1/topics/preview", summary: "Preview a topic rule",
			description: "What a rule would have matched among the releases of the last 30 days, ten of them as examples, " +
				"and how many current subscribers would be emailed about such releases: those of the topic being edited (slug) " +
				"and those following one of the rule's departments, each counted once.",
			body: ref("PreviewInput"), status: 200, response: ref("Preview"), errors: []int{400}},
		{method: "GET", path: "/api/v1/topics/{slug}", summary: "Get a topic", params: []obj{slug},
			status: 200, response: ref("Topic"), errors: []int{404}},
		{method: "PUT", path: "/api/v1/topics/{slug}", summary: "Update a topic",
			description: "Replaces title, description and rule. A changed rule re-tags the archive; saving a retired topic brings it back.",
			params:      []obj{slug}, body: ref("TopicInput"), status: 200, response: ref("Topic"), errors: []int{400, 404}},
		{method: "POST", path: "/api/v1/topics/{slug}/retire", summary: "Retire a topic",
			description: "The topic keeps its releases and history, stops matching new releases, and its feeds say they have ended.",
			params:      []obj{slug}, status: 200, response: ref("Topic"), errors: []int{404}},
		{method: "GET", path: "/api/v1/sources", summary: "List sources with their health",
			status: 200, response: arrayOf(ref("Source"))},
		{method: "POST", path: "/api/v1/sources", summary: "Add a source",
			body: ref("SourceInput"), status: 201, response: ref("Source"), errors: []int{400}},
		{method: "GET", path: "/api/v1/sources/{name}", summary: "Get a source", params: []obj{name},
			status: 200, response: ref("Source"), errors: []int{404}},
		{method: "PUT", path: "/api/v1/sources/{name}", summary: "Update a source",
			description: "Replaces URL, department and format; an omitted enabled keeps the current setting.",
			params:      []obj{name}, body: ref("SourceInput"), status: 200, response: ref("Source"), errors: []int{400, 404}},
		{method: "POST", path: "/api/v1/sources/{name}/disable", summary: "Stop pulling a source",
			params: []obj{name}, status: 200, response: ref("Source"), errors: []int{404}},
		{method: "POST", path: "/api/v1/sources/{name}/enable", summary: "Resume pulling a source",
			params: []obj{name}, status: 200, response: ref("Source"), errors: []int{404}},
		{method: "POST", path: "/api/v1/sources/{name}/pull", summary: "Pull a source now",
			description: "Fetches the publisher's feed at once and answers the source's state afterwards; 502 when the fetch failed.",
			params:      []obj{name}, status: 200, response: ref("Source"), errors: []int{404, 502}, needs: "puller"},
		{method: "GET", path: "/api/v1/searches", summary: "List followed searches",
			description: "The searches people get emails about (from the search page's \"Get emails about this search\"), " +
				"the most followed first, with their active subscriptions per frequency and the requests waiting for confirmation.",
			params: []obj{queryParam("limit", "At most this many (1 to 1000, default 100).", false, obj{"type": "integer", "minimum": 1, "maximum": 1000})},
			status: 200, response: arrayOf(ref("Search")), errors: []int{400}},
		{method: "GET", path: "/api/v1/searches/{id}", summary: "Get a followed search",
			description: "The search with the topic proposed for it: the rule as close to the search as topic rules allow, " +
				"and how the two differ.",
			params: []obj{searchID}, status: 200, response: ref("SearchDetail"), errors: []int{404}},
		{method: "POST", path: "/api/v1/searches/{id}/promote", summary: "Promote a search to a topic",
			description: "Creates the topic (fields left empty take the proposal's), tags the archive with it and moves the " +
				"search's active subscriptions to it, in one transaction. Requests waiting for confirmation stay with the search.",
			params: []obj{searchID}, body: ref("PromoteInput"), status: 201, response: ref("Promoted"), errors: []int{400, 404}},
		{method: "GET", path: "/api/v1/departments", summary: "List departments",
			status: 200, response: arrayOf(ref("Department"))},
		{method: "POST", path: "/api/v1/departments", summary: "Add a department",
			body: ref("DepartmentInput"), status: 201, response: ref("Department"), errors: []int{400}},
		{method: "GET", path: "/api/v1/departments/{slug}", summary: "Get a department", params: []obj{dslug},
			status: 200, response: ref("Department"), errors: []int{404}},
		{method: "PUT", path: "/api/v1/departments/{slug}", summary: "Update a department",
			params: []obj{dslug}, body: ref("DepartmentInput"), status: 200, response: ref("Department"), errors: []int{400, 404}},
		{method: "GET", path: "/api/v1/subscribers", summary: "Look up a subscriber",
			description: "The address's status, suppression and subscriptions.",
			params:      []obj{address}, status: 200, response: ref("Subscriber"), errors: []int{400, 404}, needs: "subscribers"},
		{method: "GET", path: "/api/v1/subscribers/export", summary: "Export everything stored about an address",
			params: []obj{address}, status: 200, response: obj{"type": "object", "description": "The subscriber's data export."},
			errors: []int{400, 404}, needs: "subscribers"},
		{method: "POST", path: "/api/v1/subscribers/erase", summary: "Erase a subscriber",
			description: "Deletes the address and everything kept about it.",
			body:        ref("AddressInput"), status: 204, errors: []int{400, 404}, needs: "subscribers"},
		{method: "POST", path: "/api/v1/subscribers/lift-suppression", summary: "Lift a suppression",
			description: "Lets Herald mail an address again after it was suppressed for bouncing.",
			body:        ref("AddressInput"), status: 204, errors: []int{400, 404}, needs: "subscribers"},
		{method: "GET", path: "/api/v1/suppressions", summary: "List suppressed addresses",
			description: "Newest first, with why (cause: bounce, complaint or manual), the report that caused it and when.",
			params: []obj{
				queryParam("cause", "Only this cause.", false, obj{"type": "string", "enum": []string{"bounce", "complaint", "manual"}}),
				queryParam("q", "Only addresses that contain this.", false, obj{"type": "string"}),
				queryParam("limit", "At most this many (1 to 1000, default 100).", false, obj{"type": "integer", "minimum": 1, "maximum": 1000}),
			},
			status: 200, response: arrayOf(ref("Suppression")), errors: []int{400}, needs: "subscribers"},
		{method: "GET", path: "/api/v1/emails", summary: "List the kinds of email",
			description: "The kinds of email Herald sends, each of which can be previewed and sent as a test.",
			status:      200, response: arrayOf(str("")), needs: "emails"},
		{method: "GET", path: "/api/v1/emails/{kind}/preview", summary: "Preview an email",
			description: "An email as it would be sent to name@example.org: subject, headers, text and HTML parts. " +
				"Made-up data, or a real release and topic or department; links in it lead to no subscriber.",
			params: []obj{emailKind,
				queryParam("release", "A release's id; default a made-up release, or the topic's or department's latest.", false, obj{"type": "integer", "minimum": 1}),
				queryParam("topic", "A topic's slug, as if the subscription followed it.", false, obj{"type": "string"}),
				queryParam("department", "A department's slug, as if the subscription followed it.", false, obj{"type": "string"}),
				queryParam("frequency", "The subscription's frequency (confirm and welcome emails).", false,
					obj{"type": "string", "enum": []string{"immediately", "daily", "weekly"}}),
			},
			status: 200, response: ref("EmailPreview"), errors: []int{400, 404}, needs: "emails"},
		{method: "POST", path: "/api/v1/emails/{kind}/test", summary: "Send a test email",
			description: "Queues the email, marked as a test in its subject, to the address given, through the outbox and the relay. " +
				"At most 20 tests an hour; the log records the kind, never the address.",
			params: []obj{emailKind}, body: ref("TestEmailInput"), status: 202, response: ref("TestEmail"), errors: []int{400, 404, 429}, needs: "emails"},
		{method: "GET", path: "/api/v1/outbox", summary: "Outbox counts by status, depth and oldest waiting message",
			status: 200, response: ref("Outbox"), needs: "outbox"},
		{method: "GET", path: "/api/v1/outbox/failed", summary: "Failed messages with their reasons",
			params: []obj{queryParam("limit", "At most this many, newest first (1 to 500, default 50).", false,
				obj{"type": "integer", "minimum": 1, "maximum": 500})},
			status: 200, response: arrayOf(ref("OutboxMessage")), errors: []int{400}, needs: "outbox"},
		{method: "POST", path: "/api/v1/outbox/{id}/retry", summary: "Send a failed message again",
			params: []obj{pathParam("id", "The message's id.")}, status: 204, errors: []int{404, 409}, needs: "outbox"},
	}
}

func apiSchemas() obj {
	rule := object(nil, obj{
		"departments": obj{"type": "array", "items": obj{"type": "string"}, "description": "Department slugs; a release must come from one of them."},
		"categories":  obj{"type": "array", "items": obj{"type": "string"}, "description": "Upstream categories, matched case-insensitively."},
		"keywords":    obj{"type": "array", "items": obj{"type": "string"}, "description": "Whole words or phrases in the title or summary."},
		"exclude":     obj{"type": "array", "items": obj{"type": "string"}, "description": "Words or phrases that rule a release out."},
	})
	rule["description"] = "A release matches when its department is listed (if any are) AND it has one of the categories or keywords " +
		"(if any are given) AND none of the exclude words."
	timeField := func(desc string) obj { return strFormat("date-time", desc) }
	searchProps := obj{
		"id": integer(""), "query": str("The search's words, normalised."), "department": str("Department slug filter."),
		"department_name": str(""), "topic": str("Topic slug filter."), "topic_title": str(""),
		"type": str("Document type filter (lower case, words joined by _)."), "name": str("What emails and pages call the search."),
		"created_at": timeField("When it was first asked for."),
		"active": obj{"type": "object", "description": "Active subscriptions by frequency.",
			"properties": obj{"immediately": integer(""), "daily": integer(""), "weekly": integer("")}},
		"pending": integer("Subscription requests waiting for confirmation."),
		"url":     str("The search page listing what it finds."),
	}
	detailProps := obj{"proposal": object(nil, obj{
		"topic": ref("TopicInput"),
		"differences": obj{"type": "array", "items": obj{"type": "string",
			"enum": []string{"body", "all_words", "prefix", "type", "topic", "accents"}},
			"description": "How the proposed topic would match differently from the search; empty when it is exact. " +
				"body: a topic reads titles and summaries only; all_words: the topic's keyword wants the words together " +
				"and in order; prefix: a topic matches whole words; type and topic: a rule cannot require these filters " +
				"beside keywords; accents: a topic matches words as written."},
	})}
	for k, v := range searchProps {
		detailProps[k] = v
	}
	return obj{
		"Error": object([]string{"error"}, obj{
			"error":  str("What went wrong."),
			"fields": obj{"type": "object", "additionalProperties": obj{"type": "string"}, "description": "Each bad field (by JSON path) and what is wrong with it."},
		}),
		"Rule": rule,
		"TopicInput": object([]string{"title", "match"}, obj{
			"slug":        str("Lower-case letters, digits and single hyphens; required when creating, fixed afterwards."),
			"title":       str("Shown to visitors; one line."),
			"description": str("Optional, shown on the topic's page."),
			"match":       ref("Rule"),
		}),
		"Topic": object(nil, obj{
			"id": integer(""), "slug": str(""), "title": str(""), "description": str(""), "match": ref("Rule"),
			"retired_at": timeField("Set when the topic was retired."), "created_at": timeField(""), "updated_at": timeField(""),
			"url": str("The topic's public page."),
			"subscribers": obj{"type": "object", "description": "Confirmed subscriptions by frequency.",
				"properties": obj{"immediately": integer(""), "daily": integer(""), "weekly": integer("")}},
		}),
		"PreviewInput": object([]string{"match"}, obj{
			"slug":  str("The topic being edited, if any: its subscribers are counted too."),
			"match": ref("Rule"),
		}),
		"Preview": object(nil, obj{
			"matched_30d": integer("Releases first stored in the last 30 days that the rule matches."),
			"examples": arrayOf(object(nil, obj{"id": integer(""), "title": str(""), "department": str(""),
				"published": timeField(""), "url": str("")})),
			"subscribers": integer("Current subscribers who would be emailed about the matched releases: the topic's own (when editing) and the rule's departments' followers, each once."),
		}),
		"SourceInput": object([]string{"url", "department"}, obj{
			"name":       str("Lower-case letters, digits and single hyphens; required when creating, fixed afterwards."),
			"url":        str("The publisher's feed, http(s)."),
			"department": str("Slug of the department the releases belong to."),
			"format":     obj{"type": "string", "enum": []string{"auto", "atom", "rss", "jsonfeed", "govuk-search"}, "default": "auto"},
			"enabled":    obj{"type": "boolean", "default": true},
		}),
		"Source": object(nil, obj{
			"id": integer(""), "name": str(""), "url": str(""), "department": str(""), "format": str(""), "enabled": boolean(""),
			"last_pull_at": timeField(""), "last_success_at": timeField(""), "last_status": str(""),
			"last_error": str("Why the last pull failed."), "failure_count": integer("Failed pulls in a row."),
			"next_pull_at": timeField("Not tried again before this, after failures."), "pulled_once": boolean(""),
			"created_at": timeField(""), "updated_at": timeField(""),
			"health": obj{"type": "string", "enum": []string{"ok", "failing", "never-pulled", "disabled"}},
		}),
		"DepartmentInput": object([]string{"name"}, obj{
			"slug": str("Required when creating, fixed afterwards."), "name": str(""), "url": str("The department's website, optional."),
		}),
		"Department": object(nil, obj{
			"id": integer(""), "slug": str(""), "name": str(""), "url": str(""), "created_at": timeField(""), "updated_at": timeField(""),
		}),
		"AddressInput": object([]string{"address"}, obj{"address": strFormat("email", "")}),
		"Search":       object(nil, searchProps),
		"SearchDetail": object(nil, detailProps),
		"PromoteInput": object(nil, obj{
			"slug":        str("The new topic's slug; empty takes the proposal's."),
			"title":       str("Empty takes the proposal's."),
			"description": str("Optional, shown on the topic's page."),
			"match":       obj{"allOf": []obj{ref("Rule")}, "description": "Empty takes the proposal's rule."},
		}),
		"Promoted": object(nil, obj{"topic": ref("Topic"), "moved": integer("Active subscriptions moved from the search to the topic.")}),
		"Subscriber": object(nil, obj{
			"address": strFormat("email", ""), "status": str(""), "created_at": timeField(""), "confirmed_at": timeField(""),
			"suppressed": boolean(""), "suppression_reason": str(""),
			"subscriptions": arrayOf(object(nil, obj{
				"topic": str(""), "department": str(""), "search": str("The search page parameters of a followed search."),
				"frequency": obj{"type": "string", "enum": []string{"immediately", "daily", "weekly"}},
				"status":    str(""), "created_at": timeField(""),
			})),
		}),
		"Suppression": object(nil, obj{
			"address": strFormat("email", ""), "cause": obj{"type": "string", "enum": []string{"bounce", "complaint", "manual"}},
			"reason": str("The relay's reply, or the report's status and diagnostic."), "failures": integer(""),
			"created_at": timeField(""), "source": str("What reported it: delivery, pipe, smtp, ses, postmark, sendgrid, mailgun."),
			"outbox_id": integer("The message the report was about."), "report": str("The report as received, at most 16 KB."),
		}),
		"Outbox": object(nil, obj{
			"counts":         obj{"type": "object", "additionalProperties": obj{"type": "integer"}, "description": "Messages per status."},
			"depth":          integer("Messages waiting or being sent."),
			"oldest_waiting": timeField("When the oldest waiting message was queued."),
		}),
		"EmailPreview": object(nil, obj{
			"kind": str(""), "subject": str(""),
			"headers": arrayOf(object(nil, obj{"name": str(""), "value": str("Decoded for people.")})),
			"text":    str("The plain-text part."), "html": str("The HTML part; its logo, if it travels in the email, as cid:logo@herald."),
		}),
		"TestEmailInput": object([]string{"to"}, obj{
			"to": strFormat("email", "Where the test goes."), "release": integer("As for the preview."),
			"topic": str(""), "department": str(""), "frequency": str(""),
		}),
		"TestEmail": object(nil, obj{"kind": str(""), "status": str("queued")}),
		"OutboxMessage": object(nil, obj{
			"id": integer(""), "key": str("Idempotency key."), "kind": str(""), "subscriber_id": integer(""),
			"subject": str(""), "message_id": str(""), "status": str(""), "attempts": integer(""),
			"next_attempt_at": timeField(""), "last_error": str("Why it failed."), "created_at": timeField(""), "sent_at": timeField(""),
		}),
	}
}

// openAPIDocument builds the OpenAPI 3.0 description of the admin API.
func (s *Server) openAPIDocument() obj {
	paths := obj{}
	served := map[string]bool{"": true, "puller": s.deps.Puller != nil,
		"subscribers": s.deps.Subscribers != nil, "outbox": s.deps.Outbox != nil, "emails": s.deps.Emails != nil}
	for _, op := range apiOperations() {
		if !served[op.needs] {
			continue
		}
		item, _ := paths[op.path].(obj)
		if item == nil {
			item = obj{}
			paths[op.path] = item
		}
		responses := obj{}
		ok := obj{"description": http.StatusText(op.status)}
		if op.response != nil {
			ok["content"] = obj{"application/json": obj{"schema": op.response}}
		}
		responses[strconv.Itoa(op.status)] = ok
		errorBody := obj{"application/json": obj{"schema": ref("Error")}}
		responses["401"] = obj{"description": "No or wrong admin token.", "content": errorBody}
		for _, code := range op.errors {
			responses[strconv.Itoa(code)] = obj{"description": http.StatusText(code), "content": errorBody}
		}
		o := obj{
			"operationId": operationID(op.method, op.path),
			"summary":     op.summary,
			"responses":   responses,
			"tags":        []string{strings.Split(strings.TrimPrefix(op.path, "/api/v1/"), "/")[0]},
		}
		if op.description != "" {
			o["description"] = op.description
		}
		if len(op.params) > 0 {
			o["parameters"] = op.params
		}
		if op.body != nil {
			o["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": op.body}}}
		}
		item[strings.ToLower(op.method)] = o
	}
	return obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":   s.cfg.SiteName + " admin API",
			"version": "1",
			"description": "Manage departments, sources and topics, see the searches people follow, look after subscribers and watch delivery. " +
				"Every operation needs an admin token from the config (admin.tokens) as Authorization: Bearer <token>.",
		},
		"servers":    []obj{{"url": s.base.String()}},
		"security":   []obj{{"bearer": []string{}}},
		"paths":      paths,
		"components": obj{"schemas": apiSchemas(), "securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}}},
	}
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.Split(part, "-") {
			if w != "" {
				b.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
		}
	}
	return b.String()
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.openAPIDocument())
}
