ALTER TABLE "audit_records" ADD COLUMN "origin" text DEFAULT 'event' NOT NULL;--> statement-breakpoint
ALTER TABLE "audit_records" ADD COLUMN "pushed_by" text;