CREATE TABLE "components" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"access" text DEFAULT 'private' NOT NULL,
	"owners" jsonb NOT NULL,
	"image" text,
	"module" text,
	"functions" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "components_tenant_name_unique" UNIQUE("tenant_id","name")
);
--> statement-breakpoint
CREATE TABLE "edge_executions" (
	"flow_exec_id" text PRIMARY KEY NOT NULL,
	"flow_id" uuid NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "execution_messages" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"execution_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"step_id" text NOT NULL,
	"message_id" text,
	"message" jsonb,
	"error" jsonb,
	"attempts" integer,
	"duration_ms" integer,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "executions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"flow_exec_id" text NOT NULL,
	"flow_id" text NOT NULL,
	"tenant_id" uuid NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"reason" text,
	"trigger" text,
	"input" jsonb,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone,
	"steps" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"dropped_outputs" integer DEFAULT 0 NOT NULL,
	"dropped_errors" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "executions_flow_exec_id_unique" UNIQUE("flow_exec_id")
);
--> statement-breakpoint
ALTER TABLE "components" ADD CONSTRAINT "components_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "execution_messages" ADD CONSTRAINT "execution_messages_execution_id_executions_id_fk" FOREIGN KEY ("execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "executions" ADD CONSTRAINT "executions_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "components_name_idx" ON "components" USING btree ("name");--> statement-breakpoint
CREATE INDEX "edge_executions_created_idx" ON "edge_executions" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "execution_messages_execution_idx" ON "execution_messages" USING btree ("execution_id","kind","seq");--> statement-breakpoint
CREATE INDEX "executions_tenant_started_idx" ON "executions" USING btree ("tenant_id","started_at");--> statement-breakpoint
CREATE INDEX "executions_flow_started_idx" ON "executions" USING btree ("flow_id","started_at");