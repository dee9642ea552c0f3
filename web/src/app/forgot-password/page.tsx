import { ForgotPasswordView } from '@/components/EmailViews';

export const metadata = { title: 'Reset your password · Hearth' };

export default function ForgotPasswordPage() {
  return <ForgotPasswordView />;
}
