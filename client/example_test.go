package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/theeye/theeye/client"
)

// Examples are compiled, not run: they need a running node.

func Example() {
	ctx := context.Background()
	c, err := client.New(client.Config{
		Servers: []string{"http://eye1:8080", "http://eye2:8080"},
		Key:     "eye_…", // an ingest key (POST /v1/apps prints it)
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	sid := "e2085be5-9137-4e4e-80b5-f1ffddc25423"
	err = c.Track(ctx, client.Event{
		SessionID: sid,
		Category:  "page interaction",
		Name:      "pageview",
		Data:      map[string]any{"host": "www.consumeraffairs.com", "path": "/"},
		Timestamp: time.Now(),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		log.Fatal(err) // *client.BatchError for each batch that could not be stored
	}
}

func ExampleClient_Track() {
	ctx := context.Background()
	c, err := client.New(client.Config{
		Servers:       []string{"http://127.0.0.1:8080"},
		Key:           "eye_…",
		BatchSize:     1000,
		FlushInterval: 200 * time.Millisecond,
		OnFull:        client.ReturnError, // shed load instead of blocking the caller
		OnError: func(err error) {
			var be *client.BatchError
			if errors.As(err, &be) {
				log.Printf("%d events not stored: %v", len(be.IDs), be.Err)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	err = c.Track(ctx, client.Event{SessionID: "s1", Category: "form interaction", Name: "submit",
		Data: map[string]any{"form": map[string]string{"first_name": "John", "last_name": "Doe"}}})
	if errors.Is(err, client.ErrQueueFull) {
		log.Print("The Eye is behind; event not queued")
	}
	// Close sends what is queued, waiting at most 10 seconds.
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Close(closeCtx); err != nil {
		log.Print(err)
	}
	fmt.Println(c.Stats().Sent)
}

func ExampleClient_SessionEvents() {
	ctx := context.Background()
	c, err := client.New(client.Config{Servers: []string{"http://127.0.0.1:8080"}, Key: "eye_…"}) // a read key
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	for ev, err := range c.SessionEvents(ctx, "e2085be5-9137-4e4e-80b5-f1ffddc25423", client.Query{Limit: 500}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Timestamp.Format(time.RFC3339Nano), ev.Category, ev.Name, string(ev.Data))
	}
}

func ExampleClient_Events() {
	ctx := context.Background()
	c, err := client.New(client.Config{Servers: []string{"http://127.0.0.1:8080"}, Key: "eye_…"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	q := client.Query{
		Category: "page interaction",
		From:     time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
		To:       time.Date(2021, 1, 2, 0, 0, 0, 0, time.UTC),
	}
	n := 0
	for _, err := range c.Events(ctx, q) {
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println(n, "page interactions on 2021-01-01")
}

func ExampleClient_Errors() {
	ctx := context.Background()
	c, err := client.New(client.Config{Servers: []string{"http://127.0.0.1:8080"}, Key: "eye_…"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	for rec, err := range c.Errors(ctx, client.ErrorQuery{Reason: "timestamp_in_future", From: time.Now().Add(-time.Hour)}) {
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range rec.Reasons {
			fmt.Println(rec.Seq, rec.App, r.Code, r.Field, r.Message)
		}
	}
}

func ExampleClient_Ingest() {
	ctx := context.Background()
	c, err := client.New(client.Config{Servers: []string{"http://127.0.0.1:8080"}, Key: "eye_…"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	ack, err := c.Ingest(ctx, []client.Event{{SessionID: "s1", Category: "page interaction", Name: "pageview",
		Data: map[string]any{"path": "/"}}})
	var e *client.Error
	if errors.As(err, &e) && e.Status == 401 {
		log.Fatalf("bad key: %s", e.Message)
	}
	if err != nil {
		log.Fatal(err)
	}
	// Read your own write on any node: wait until it has indexed ack.Seq.
	for ev, err := range c.SessionEvents(ctx, "s1", client.Query{MinSeq: ack.Seq}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Seq, ev.ID)
	}
}
