-- public.users: an engineer who writes flows and uses the step library. The application's table:
-- stepsync reads id and account_id (visibility, forks) and adds nothing to it.
CREATE TABLE public.users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    email         text        NOT NULL,
    display_name  text,
    account_id    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts (id)
);
COMMENT ON TABLE public.users IS 'An engineer who writes flows and uses the step library.';
COMMENT ON COLUMN public.users.id IS 'Primary key.';
COMMENT ON COLUMN public.users.email IS 'Login e-mail address, unique.';
COMMENT ON COLUMN public.users.display_name IS 'Name shown in the application.';
COMMENT ON COLUMN public.users.account_id IS 'The account (team) the user belongs to, if any.';
COMMENT ON COLUMN public.users.created_at IS 'When the user was created.';
