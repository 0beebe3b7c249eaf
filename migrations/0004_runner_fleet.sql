CREATE TABLE "execution_deliveries" (
	"execution_id" uuid NOT NULL,
	"delivery_id" text NOT NULL,
	"delivered" boolean DEFAULT false NOT NULL,
	"done" boolean DEFAULT false NOT NULL,
	CONSTRAINT "execution_deliveries_execution_id_delivery_id_pk" PRIMARY KEY("execution_id","delivery_id")
);
--> statement-breakpoint
CREATE TABLE "deployments" (
	"flow_id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid NOT NULL,
	"runner_id" uuid,
	"phase" text NOT NULL,
	"generation" integer NOT NULL,
	"spec" jsonb NOT NULL,
	"workers" integer NOT NULL,
	"drivers" jsonb NOT NULL,
	"announced" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "step_logs" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"flow_id" uuid NOT NULL,
	"tenant_id" uuid NOT NULL,
	"step_id" text NOT NULL,
	"runner_id" uuid,
	"at" timestamp with time zone NOT NULL,
	"stream" text NOT NULL,
	"line" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "components" ALTER COLUMN "tenant_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "executions" ADD COLUMN "first_error" jsonb;--> statement-breakpoint
ALTER TABLE "runners" ADD COLUMN "desired_version" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "execution_deliveries" ADD CONSTRAINT "execution_deliveries_execution_id_executions_id_fk" FOREIGN KEY ("execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_runner_id_runners_id_fk" FOREIGN KEY ("runner_id") REFERENCES "public"."runners"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "step_logs" ADD CONSTRAINT "step_logs_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "deployments_runner_idx" ON "deployments" USING btree ("runner_id");--> statement-breakpoint
CREATE INDEX "step_logs_flow_step_idx" ON "step_logs" USING btree ("flow_id","step_id","seq");--> statement-breakpoint
CREATE INDEX "step_logs_at_idx" ON "step_logs" USING btree ("at");--> statement-breakpoint
CREATE UNIQUE INDEX "components_builtin_name_unique" ON "components" USING btree ("name") WHERE "components"."tenant_id" is null;